"""Packages: which package owns each file, which packages carry the bloat, and how packages changed.

Package databases are read per layer from what the scan kept (``LayerScan.captured``): dpkg
(``/var/lib/dpkg/status`` + ``info/*.list``, distroless ``status.d``), apk (``/lib/apk/db/installed``),
rpm (``rpmdb.sqlite``), Python distributions (``*.dist-info``, ``*.egg-info``) and npm packages
(``node_modules/**/package.json``).

>>> img.packages                                  # one row per package version any layer installed
>>> img.files.groupby("package")["size"].sum()    # files and events carry package, ecosystem, package_id
>>> img.bloat().by_package                        # waste by the package that shipped it
>>> ocilens.packages.package_diff(old, new)       # added / removed / upgraded / downgraded, size deltas
>>> ocilens.packages.layer_package_diff(img, 3)   # what layer 3 did to the packages
"""

from __future__ import annotations

from .base import ECOSYSTEMS, Package
from .frames import (CHANGES, PACKAGE_COLUMNS, add_package_columns, diff_packages, layer_package_diff,
                     package_causes, package_diff, packages_at, packages_frame, waste_by_ecosystem,
                     waste_by_package)
from .model import FATES, PackageModel, compare_versions, model_of

__all__ = ["ECOSYSTEMS", "FATES", "CHANGES", "PACKAGE_COLUMNS", "Package", "PackageModel", "model_of",
           "compare_versions", "add_package_columns", "packages_frame", "packages_at", "package_causes",
           "waste_by_package", "waste_by_ecosystem", "diff_packages", "package_diff", "layer_package_diff"]
