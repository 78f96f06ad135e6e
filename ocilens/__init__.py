"""ocilens: what is inside a container image, and why it is so big.

>>> import ocilens
>>> img = ocilens.load("oci:path/to/layout:tag")       # or oci-archive:, docker-archive:, host/repo:tag
>>> img.layers, img.events, img.files                  # pandas DataFrames
>>> fleet = ocilens.audit("registry.example.com:5000")  # every image of a registry, each layer scanned once
"""

from __future__ import annotations

from . import errors
from .errors import (AnalysisError, AuthenticationError, DigestMismatch, ExtractionError, ImageNotFound,
                     ImageReferenceError, IntegrityError, InvalidReference, LayerDecodeError, OcilensError,
                     RateLimited, RegistryError, RegistryNotFound, RegistryUnavailable, SizeMismatch,
                     SourceError, SourceNotFound, UnsafeEntryError, UnsupportedImage, UsageError)

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

# The rest of the public API is imported on first use, so ``import ocilens`` (and a CLI command) starts in
# a few milliseconds: pandas, numpy, httpx and matplotlib load only when something needs them.
_LAZY = {
    "load": "image", "platforms": "image", "sample_image": "image", "Image": "image", "SAMPLE_REF": "image",
    "check": "gate", "GateResult": "gate", "list_cache": "cache_cli", "prune_cache": "cache_cli",
    "parse_reference": "reference", "Reference": "reference", "Platform": "platform",
    "Bloat": "bloat", "ImageDiff": "diff", "DiveNumbers": "dive", "Report": "report", "ExtractResult": "extract",
    "audit": "fleet", "FleetAudit": "fleet", "FleetReport": "fleet",
}
_SUBMODULES = ("packages",)


def __getattr__(name: str) -> object:
    """Import the module that holds ``name`` on first use, and keep the value here."""
    import importlib

    if name in _SUBMODULES:
        value: object = importlib.import_module(f".{name}", __name__)
    elif name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        if isinstance(value, type):
            value.__module__ = "ocilens"
    else:
        raise AttributeError(f"module 'ocilens' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
