"""Packages: which package owns each file, which packages carry the bloat, and how packages changed.

Package databases are read per layer from what the scan kept (``LayerScan.captured``): dpkg
(``/var/lib/dpkg/status`` + ``info/*.list``, distroless ``status.d``), apk (``/lib/apk/db/installed``),
rpm (``rpmdb.sqlite``), Python distributions (``*.dist-info``, ``*.egg-info``) and npm packages
(``node_modules/**/package.json``). Which files those are, each ecosystem module says (``CAPTURE``), and
``packages.capture`` joins them for the scan.

>>> img.packages                                  # one row per package version any layer installed
>>> img.files.groupby("package")["size"].sum()    # files and events carry package, ecosystem, package_id
>>> img.bloat().by_package                        # waste by the package that shipped it
>>> ocilens.packages.package_diff(old, new)       # added / removed / upgraded / downgraded, size deltas
>>> ocilens.packages.layer_package_diff(img, 3)   # what layer 3 did to the packages
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import ECOSYSTEMS, Package

if TYPE_CHECKING:
    from .frames import (CHANGES, PACKAGE_COLUMNS, add_package_columns, diff_packages, layer_package_diff,
                         package_causes, package_diff, packages_at, packages_frame, waste_by_ecosystem,
                         waste_by_package)
    from .model import FATES, PackageModel, compare_versions, model_of

__all__ = ["ECOSYSTEMS", "FATES", "CHANGES", "PACKAGE_COLUMNS", "Package", "PackageModel", "model_of",
           "compare_versions", "add_package_columns", "packages_frame", "packages_at", "package_causes",
           "waste_by_package", "waste_by_ecosystem", "diff_packages", "package_diff", "layer_package_diff"]

# The frames and the model need pandas: they load on first use, so the scan can import ``packages.capture``
# (the database files it keeps) without them.
_LAZY = {"FATES": "model", "PackageModel": "model", "model_of": "model", "compare_versions": "model",
         **{name: "frames" for name in ("CHANGES", "PACKAGE_COLUMNS", "add_package_columns", "packages_frame",
                                        "packages_at", "package_causes", "waste_by_package", "waste_by_ecosystem",
                                        "diff_packages", "package_diff", "layer_package_diff")}}


def __getattr__(name: str) -> object:
    import importlib

    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
