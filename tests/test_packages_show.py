"""Package size changes in the report and in ``ocilens diff``'s text are shown in human units with a sign
(``+11.5 kB``, ``-7.0 kB``), like every other size change, not as raw byte counts.

Two apk images written by hand (the database from the format's specification, as in
``test_packages_lang.test_apk_database``); the truth is the bytes written into them, and the expected
texts are written out here by hand (SI units: 1 kB = 1000 B, one decimal, as dive and docker print them).
"""

from __future__ import annotations

import re
from pathlib import Path

import ocilens
from imagebuild import layout_from_tars
from ocilens.packages.show import diff_lines, package_diff_html
from test_packages_lang import apk_layer

ALPHA_1 = {"alpha": ("1.0-r0", {"usr/lib/libalpha.so.1": b"\x7fELF" + b"a" * 4000})}  # 4,004 B
ALPHA_2 = {"alpha": ("2.0-r0", {"usr/lib/libalpha.so.1": b"\x7fELF" + b"A" * 15500})}  # 15,504 B
CURL = {"curl": ("8.5.0-r0", {"usr/bin/curl": b"\x7fELF" + b"c" * 7000})}  # 7,004 B
GAMMA = {"gamma": ("0.1-r0", {"usr/share/gamma/data": b"g" * 1_340_000})}  # 1,340,000 B
# old -> new: alpha +11,500 B, curl -7,004 B, gamma +1,340,000 B; in all +1,344,496 B
WANT = {"alpha": ("upgraded", "+11.5 kB"), "curl": ("removed", "-7.0 kB"), "gamma": ("added", "+1.3 MB")}
WANT_BACK = {"alpha": ("downgraded", "-11.5 kB"), "curl": ("added", "+7.0 kB"), "gamma": ("removed", "-1.3 MB")}


def _images(tmp_path: Path) -> tuple[ocilens.Image, ocilens.Image]:
    """The old image (alpha 1.0, curl) and the new one (alpha 2.0, gamma)."""
    old_db, new_db = {**ALPHA_1, **CURL}, {**ALPHA_2, **GAMMA}
    old = layout_from_tars(tmp_path, [apk_layer(old_db, old_db)], history=["apk add alpha curl"])
    new = layout_from_tars(tmp_path, [apk_layer(new_db, new_db)], history=["apk add alpha gamma"])
    return (ocilens.load(f"oci:{old}:t", cache=False, progress=False),
            ocilens.load(f"oci:{new}:t", cache=False, progress=False))


def _html_rows(markup: str) -> dict[str, tuple[str, str]]:
    """Package name -> (change, the size change cell's text) from the table's body rows."""
    body = markup.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    out = {}
    for row in re.findall(r"<tr>(.*?)</tr>", body):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
        out[cells[2]] = (cells[0], cells[-1])
    return out


def test_package_size_changes_show_in_human_units_with_a_sign(tmp_path: Path) -> None:
    """The report's package table and summary, and the CLI's lines, in both directions of the diff."""
    old, new = _images(tmp_path)
    frame = old.diff(new).packages
    truth = {"alpha": 15504 - 4004, "curl": -7004, "gamma": 1_340_000}
    assert {r.name: int(r.size_delta) for r in frame.itertuples()} == truth  # the bytes written above

    for a, b, want, total in ((old, new, WANT, "+1.3 MB"), (new, old, WANT_BACK, "-1.3 MB")):
        d = a.diff(b).packages
        markup = package_diff_html(d)
        assert _html_rows(markup) == want
        assert f"; {total} in packages.</p>" in markup
        lines = diff_lines(d)
        assert lines[0].endswith(f"; {total} in packages")
        for name, (change, text) in want.items():
            line = next(line for line in lines[1:] if f"apk:{name} " in line)
            assert re.match(rf"\s+{change}\s+{re.escape(text)}\s+apk:{name} ", line), line
        assert not re.search(r"\d{4}", " ".join(lines) + markup.split("<tbody>", 1)[1]), "a raw byte count is left"
