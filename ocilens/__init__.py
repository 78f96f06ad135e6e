"""ocilens: what is inside a container image, and why it is so big.

>>> import ocilens
>>> img = ocilens.load("oci:path/to/layout:tag")       # or oci-archive:, docker-archive:, host/repo:tag
>>> img.layers, img.events, img.files                  # pandas DataFrames
>>> fleet = ocilens.audit("registry.example.com:5000")  # every image of a registry, each layer scanned once
"""

from __future__ import annotations

from . import errors, packages
from .errors import (AnalysisError, AuthenticationError, DigestMismatch, ExtractionError, ImageNotFound,
                     ImageReferenceError, IntegrityError, InvalidReference, LayerDecodeError, OcilensError,
                     RateLimited, RegistryError, RegistryNotFound, RegistryUnavailable, SizeMismatch,
                     SourceError, SourceNotFound, UnsafeEntryError, UnsupportedImage)
from .bloat import Bloat
from .cache_cli import list_cache, prune_cache
from .diff import ImageDiff
from .dive import DiveNumbers
from .errors import UsageError
from .extract import ExtractResult
from .gate import GateResult, check
from .image import SAMPLE_REF, Image, load, platforms, sample_image
from .platform import Platform
from .reference import Reference, parse_reference
from .report import Report

__version__ = "0.1.0"

__all__ = [
    "load", "platforms", "sample_image", "check", "list_cache", "prune_cache", "parse_reference",
    "audit", "FleetAudit", "FleetReport",
    "Image", "Bloat", "ImageDiff", "DiveNumbers", "GateResult", "Report", "ExtractResult", "Platform", "Reference",
    "SAMPLE_REF", "errors", "packages", "UsageError",
    "OcilensError", "ImageReferenceError", "InvalidReference", "SourceError", "SourceNotFound", "ImageNotFound",
    "UnsupportedImage", "RegistryError", "AuthenticationError", "RegistryNotFound", "RateLimited",
    "RegistryUnavailable", "IntegrityError", "DigestMismatch", "SizeMismatch", "LayerDecodeError",
    "UnsafeEntryError", "ExtractionError", "AnalysisError",
]

for _name in ("Image", "Bloat", "ImageDiff", "DiveNumbers", "GateResult", "Report", "ExtractResult", "Platform",
              "Reference"):
    globals()[_name].__module__ = "ocilens"

_LAZY = {"audit": "fleet", "FleetAudit": "fleet", "FleetReport": "fleet"}


def __getattr__(name: str) -> object:
    """The fleet audit (and the HTTP client it needs) is imported on first use: ``import ocilens`` stays fast."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        if isinstance(value, type):
            value.__module__ = "ocilens"
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ocilens' has no attribute {name!r}")
