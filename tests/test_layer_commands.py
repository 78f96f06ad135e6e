"""The report's layer tree shows each layer's command as every other command surface does (``command_html``):
escaped, and broken only at its spaces, never at a hyphen (``apt-get``, ``--no-install-recommends``).

The commands are written into the image's config by the test (``layout_from_tars``); the truth they are
checked against is that text, read back from the layout's config (``config_of``), not ocilens's output.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import ocilens
from imagebuild import Entry, config_of, layout_from_tars, tar_layer
from ocilens.html import command_html
from ocilens.tree import layers_html

SHORT = "RUN echo '<script>alert(1)</script>' > /x"
LONG = ("RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates build-essential "
        "python3-dev && echo '<script>alert(2)</script>' && rm -rf /var/lib/apt/lists/*")


class _Commands(HTMLParser):
    """The ``span.c`` elements of a page: each one's text, and the text before each ``<wbr>`` in it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.spans: list[dict[str, Any]] = []
        self.tags: list[str] = []
        self._depth = 0  # > 0 inside a span.c (counting the spans nested in it)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "span" and (self._depth or dict(attrs).get("class") == "c"):
            if not self._depth:
                self.spans.append({"text": "", "breaks": []})
            self._depth += 1
        elif tag == "wbr" and self._depth:
            self.spans[-1]["breaks"].append(self.spans[-1]["text"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._depth:
            self.spans[-1]["text"] += data


def _layer_part(page: str, i: int) -> str:
    """The markup of layer ``i``'s ``<details>``."""
    return page.split(f'id="layer-{i}"', 1)[1].split('<details class="layer"', 1)[0]


def test_layer_tree_commands_use_command_markup_and_stay_escaped(tmp_path: Path) -> None:
    """Each layer's summary (and, for a long command, the full line below it) is ``command_html``'s markup:
    the text of the config's ``created_by``, escaped, with a break opportunity only after a space."""
    layout = layout_from_tars(tmp_path, [tar_layer([Entry.file("a", b"a" * 10)]),
                                         tar_layer([Entry.file("b", b"b" * 20)])], history=[SHORT, LONG])
    truth = [row["created_by"] for row in config_of(layout, "t")["history"]]
    assert truth == [SHORT, LONG] and len(LONG) > 110  # a long command: shortened in the summary
    img = ocilens.load(f"oci:{layout}:t", cache=False, progress=False)
    page = layers_html(img, top=5)
    assert "<script" not in page and "&lt;script&gt;" in page

    for i, cmd in enumerate(truth):
        part = _layer_part(page, i)
        summary = part.split("<summary>", 1)[1].split("</summary>", 1)[0]
        assert "<code>" not in summary  # no plain <code> left, which broke at hyphens
        p = _Commands()
        p.feed(part)
        assert p.spans, f"layer {i}: no command markup"
        shown = p.spans[0]["text"]
        if len(cmd) <= 110:
            assert shown == cmd and len(p.spans) == 1
            assert command_html(cmd) in summary
        else:  # the summary shows the start of the command; the full command follows the summary
            assert shown.endswith("…") and cmd.startswith(shown[:-1]) and len(shown) <= 110
            assert command_html(shown) in summary
            assert [s["text"] for s in p.spans[1:2]] == [cmd]
            assert f'<p class="muted">{command_html(cmd)}</p>' in part
        for span in p.spans:
            # break opportunities only after a space: never inside apt-get, --no-install-recommends, ...
            assert span["breaks"] and all(before.endswith(" ") for before in span["breaks"]), span
            words = span["text"].split(" ")
            assert len(span["breaks"]) == len(words) - 1


def test_report_page_uses_the_command_markup_in_its_layer_tree(tmp_path: Path) -> None:
    """The whole report shows the long command in the layer tree as ``command_html`` renders it."""
    layout = layout_from_tars(tmp_path, [tar_layer([Entry.file("a", b"a" * 10)])], history=[LONG])
    img = ocilens.load(f"oci:{layout}:t", cache=False, progress=False)
    page = img.report(top=5).html
    section = page.split("<h2>Explore the layers</h2>", 1)[1].split("<h2>", 1)[0]
    assert f'<p class="muted">{command_html(LONG)}</p>' in _layer_part(section, 0)
    assert "<script>" not in page
