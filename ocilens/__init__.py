"""ocilens: what is inside a container image, and why it is so big.

>>> import ocilens
>>> img = ocilens.load("oci:path/to/layout:tag")       # or oci-archive:, docker-archive:, host/repo:tag
>>> img.layers, img.events, img.files                  # pandas DataFrames
"""

from __future__ import annotations

from . import errors
from .errors import (AnalysisError, AuthenticationError, DigestMismatch, ExtractionError, ImageNotFound,
                     ImageReferenceError, IntegrityError, InvalidReference, LayerDecodeError, OcilensError,
                     RateLimited, RegistryError, RegistryNotFound, RegistryUnavailable, SizeMismatch,
                     SourceError, SourceNotFound, UnsafeEntryError, UnsupportedImage)
from .extract import ExtractResult
from .image import SAMPLE_REF, Image, load, sample_image
from .platform import Platform

__version__ = "0.1.0"

__all__ = [
    "load", "sample_image", "Image", "ExtractResult", "Platform", "SAMPLE_REF", "errors",
    "OcilensError", "ImageReferenceError", "InvalidReference", "SourceError", "SourceNotFound", "ImageNotFound",
    "UnsupportedImage", "RegistryError", "AuthenticationError", "RegistryNotFound", "RateLimited",
    "RegistryUnavailable", "IntegrityError", "DigestMismatch", "SizeMismatch", "LayerDecodeError",
    "UnsafeEntryError", "ExtractionError", "AnalysisError",
]

for _name in ("Image", "ExtractResult", "Platform"):
    globals()[_name].__module__ = "ocilens"
