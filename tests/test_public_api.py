"""The public API: every name in ``ocilens.__all__`` resolves, and importing the package stays cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_import_ocilens_loads_no_heavy_library() -> None:
    """``import ocilens`` stays instant: pandas, numpy, httpx, matplotlib and ipywidgets load on first use."""
    code = ("import sys, ocilens; heavy = {'pandas', 'numpy', 'httpx', 'matplotlib', 'ipywidgets'} & set(sys.modules);"
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_public_name_resolves() -> None:
    import ocilens

    for name in ocilens.__all__:
        value = getattr(ocilens, name)
        if isinstance(value, type) and not issubclass(value, Exception):  # errors stay in ocilens.errors
            assert value.__module__ == "ocilens", name
    assert set(ocilens.__all__) <= set(dir(ocilens))
    with pytest.raises(AttributeError):
        ocilens.no_such_name  # noqa: B018
