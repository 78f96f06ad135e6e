"""The CI gate: thresholds on efficiency and waste, from the command line or dive's ``.dive-ci`` file.

Rules and their defaults are dive's: ``lowestEfficiency`` 0.9, ``highestUserWastedPercent`` 0.1,
``highestWastedBytes`` disabled. By default the rules are checked against dive's numbers, so a team's
existing thresholds mean the same thing; ``numbers="ocilens"`` checks ocilens's stricter accounting.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import AnalysisError, UsageError
from .dive import _ratio
from .units import parse_size

if TYPE_CHECKING:
    from .image import Image

__all__ = ["Rule", "GateResult", "parse_size", "read_dive_ci", "check", "DEFAULT_RULES", "SCHEMA"]

SCHEMA = "ocilens.check/v1"
RULE_NAMES = ("lowestEfficiency", "highestWastedBytes", "highestUserWastedPercent")
DEFAULT_RULES: dict[str, float | None] = {"lowestEfficiency": 0.9, "highestWastedBytes": None,
                                          "highestUserWastedPercent": 0.1}
_DISABLED = ("disabled", "off", "false", "none", "")


OPTION_NAMES = {"lowestEfficiency": "--lowest-efficiency", "highestWastedBytes": "--highest-wasted-bytes",
                "highestUserWastedPercent": "--highest-user-wasted-percent"}


def _threshold(name: str, value: Any, where: str) -> float | None:
    """A rule's threshold: a ratio in 0..1, or a size for ``highestWastedBytes``; None when disabled."""
    if isinstance(value, str):
        value = value.strip().strip("\"'")
        if value.lower() in _DISABLED:
            return None
    elif value is None:
        return None
    if name == "highestWastedBytes":
        try:
            return float(parse_size(value))
        except UsageError as exc:
            raise UsageError(f"{where}: {name}: {exc}") from None
    try:
        number = float(value)
    except ValueError:
        raise AnalysisError(f"{where}: {name} must be a number between 0 and 1, not {value!r}") from None
    if not 0.0 <= number <= 1.0 or math.isnan(number):
        raise AnalysisError(f"{where}: {name} must be between 0 and 1 (a ratio, 0.9 = 90%), not {number}")
    return number


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_QUOTED = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^']|'')*'""")
_COLON = re.compile(r":(?=\s|$)")
_PLAIN_FLOW = re.compile(r"(?:[^,\[\]{}:]|:(?![\s,\[\]{}]|$))+")  # a plain scalar inside {...} or [...]
_HINT = "write `rules:` followed by indented `key: value` lines, or `rules: {key: value, ...}`"


def _strip_comment(line: str, where: str) -> str:
    """The line without its comment: ``#`` at the start or after a blank, outside quotes (YAML's rule)."""
    quote = ""
    last = ""  # the last non-blank character outside quotes: a quote opens a scalar only after these
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if quote == '"' and c == "\\":
                i += 1
            elif c == quote and quote == "'" and line[i + 1:i + 2] == "'":
                i += 1
            elif c == quote:
                quote, last = "", c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
        elif c in "\"'" and last in ("", ":", "{", "[", ",", "-", "?"):
            quote = c
        elif c not in " \t":
            last = c
        i += 1
    if quote:
        raise AnalysisError(f"{where}: cannot parse {line.strip()!r}: the quote {quote} is never closed",
                            hint="close the quote on the same line")
    return line.rstrip()


def _unquote(text: str) -> str:
    """A YAML scalar's value: quotes removed (``''`` and ``\\"`` unescaped), plain text as it is."""
    if _QUOTED.fullmatch(text):
        inner = text[1:-1]
        return inner.replace("''", "'") if text[0] == "'" else re.sub(r"\\(.)", r"\1", inner)
    return text


class _Unclosed(Exception):
    """The flow collection continues past the text read so far."""


class _Flow:
    """A YAML flow collection of scalars (``{rules: {lowestEfficiency: 0.9}}``, ``[a, b]``), parsed from text."""

    def __init__(self, text: str, where: str) -> None:
        self.text, self.where, self.pos = text, where, 0

    def fail(self, what: str) -> AnalysisError:
        return AnalysisError(f"{self.where}: cannot parse {self.text.strip()!r}: {what}", hint=_HINT)

    def peek(self) -> str:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1
        if self.pos >= len(self.text):
            raise _Unclosed
        return self.text[self.pos]

    def parse(self) -> Any:
        value = self.value()
        if self.text[self.pos:].strip():
            raise self.fail(f"unexpected {self.text[self.pos:].strip()!r} after the closing bracket")
        return value

    def value(self) -> Any:
        c = self.peek()
        if c in "{[":
            return self.collection()
        return self.scalar()

    def collection(self) -> dict[str, Any] | list[Any]:
        close = "}" if self.text[self.pos] == "{" else "]"
        out: dict[str, Any] | list[Any] = {} if close == "}" else []
        self.pos += 1
        while self.peek() != close:
            if isinstance(out, dict):
                key = self.scalar()
                if not isinstance(key, str) or self.peek() != ":":
                    raise self.fail(f"expected `key: value` at {self.text[self.pos:].strip()!r}")
                self.pos += 1
                out[key] = "" if self.peek() in ",}" else self.value()
            else:
                out.append(self.value())
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() != close:
                raise self.fail(f"expected ',' or '{close}' at {self.text[self.pos:].strip()!r}")
        self.pos += 1
        return out

    def scalar(self) -> str:
        m = _QUOTED.match(self.text, self.pos)
        if m:
            self.pos = m.end()
            return _unquote(m.group())
        m = _PLAIN_FLOW.match(self.text, self.pos)
        if not m or not m.group().strip():
            raise self.fail(f"expected a value at {self.text[self.pos:].strip() or 'the end'!r}")
        self.pos = m.end()
        return m.group().strip()


def _flow(lines: list[str], index: int, text: str, path: str | Path) -> tuple[Any, int]:
    """Parse the flow collection that starts in ``text`` (line ``index``), reading on while it is open;
    returns it and the index of the first line after it."""
    where = f"{path}:{index + 1}"
    end = index + 1
    while True:
        try:
            return _Flow(text, where).parse(), end
        except _Unclosed:
            if end >= len(lines):
                raise AnalysisError(f"{where}: cannot parse {text.strip()!r}: a bracket is never closed",
                                    hint=_HINT) from None
            text += " " + _strip_comment(lines[end], f"{path}:{end + 1}")
            end += 1


def _read_text(path: str | Path) -> str:
    """The file's text; a missing, unreadable, directory or non-UTF-8 file is an error naming it."""
    hint = "--ci-config takes a dive CI file (YAML with `rules:`); without it ./.dive-ci is read when present"
    try:
        data = Path(path).read_bytes()
    except IsADirectoryError:
        raise UsageError(f"cannot read {path}: it is a directory, not a .dive-ci file", hint=hint) from None
    except FileNotFoundError:
        raise UsageError(f"cannot read {path}: no such file", hint=hint) from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}", hint=hint) from None
    try:
        return data.decode("utf-8-sig")  # YAML allows a byte order mark
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UsageError(f"{path}:{line}: not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})",
                         hint="a .dive-ci file is YAML: save it as UTF-8") from None


def read_dive_ci(path: str | Path) -> dict[str, float | None]:
    """The ``rules:`` of a ``.dive-ci`` file: the YAML subset dive's files use (block or flow mappings of
    scalars, comments, ``---``). Unknown rules are ignored with a warning, as dive ignores them; a line
    that is not in that subset is an error naming it, never skipped."""
    rules: dict[str, float | None] = {}
    in_rules = False
    lines = _read_text(path).splitlines()

    def take(key: str, value: Any, where: str) -> None:
        if key not in RULE_NAMES:
            warnings.warn(f"{where}: unknown rule {key!r} ignored (dive's rules are {', '.join(RULE_NAMES)})",
                          stacklevel=4)
            return
        if not isinstance(value, str):
            raise AnalysisError(f"{where}: {key} must be a number or a size, not a "
                                f"{'mapping' if isinstance(value, dict) else 'list'}", hint=_HINT)
        rules[key] = _threshold(key, value, where)

    def rule_map(value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise AnalysisError(f"{where}: `rules` must be a mapping of rule names to thresholds", hint=_HINT)
        return value

    index = 0
    while index < len(lines):
        where = f"{path}:{index + 1}"
        line = _strip_comment(lines[index], where)
        index += 1
        body = line.strip()
        if not body or body in ("---", "..."):
            continue
        indented = line[0] in " \t"
        if not indented and body[0] in "{[":  # the whole document in flow style: {rules: {...}}
            doc, index = _flow(lines, index - 1, line, path)
            if not isinstance(doc, dict):
                raise AnalysisError(f"{where}: the document is a list; dive reads a mapping with `rules`", hint=_HINT)
            for k, v in rule_map(doc.get("rules", {}), where).items():
                take(k, v, where)
            in_rules = False
            continue
        colon = _COLON.search(body)  # YAML's `key: value` needs a blank (or the end) after the colon
        key, value = (body[:colon.start()].strip(), body[colon.end():].strip()) if colon else (body, "")
        if not colon or not (_PLAIN_KEY.fullmatch(key) or _QUOTED.fullmatch(key)):
            raise AnalysisError(f"{where}: cannot parse {lines[index - 1].strip()!r}", hint=_HINT)
        key = _unquote(key)
        if not indented:
            in_rules = key == "rules"
            if in_rules and value:
                flow, index = _flow(lines, index - 1, value, path) if value[0] in "{[" else (value, index)
                for k, v in rule_map(flow, where).items():
                    take(k, v, where)
                in_rules = False
            continue
        if in_rules:
            take(key, _unquote(value), where)
    return rules


@dataclass
class Rule:
    name: str
    threshold: float | None
    value: float | None
    status: str  # "pass", "fail", "skip"
    source: str  # "default", ".dive-ci", "cli"


@dataclass
class GateResult:
    """The outcome of ``check``: each rule, the numbers used, and whether all passed."""

    reference: str
    numbers: str
    metrics: dict[str, Any]
    rules: list[Rule] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.status != "fail" for r in self.rules)

    def to_dict(self) -> dict[str, Any]:
        """The documented, stable JSON schema ``ocilens.check/v1``."""
        def num(x: Any) -> Any:
            # JSON has no NaN or infinity: NaN (0/0) is null, +Inf (waste over zero user bytes) "Infinity".
            if isinstance(x, float) and math.isnan(x):
                return None
            if isinstance(x, float) and math.isinf(x):
                return "Infinity" if x > 0 else "-Infinity"
            return x

        return {
            "schema": SCHEMA,
            "reference": self.reference,
            "numbers": self.numbers,
            "passed": self.passed,
            "metrics": {k: num(v) for k, v in self.metrics.items()},
            "rules": [{"name": r.name, "threshold": r.threshold, "value": num(r.value), "status": r.status,
                       "source": r.source} for r in self.rules],
        }


def check(image: "Image", rules: dict[str, float | None] | None = None, *, numbers: str = "dive",
          dive_ci: str | Path | None = None) -> GateResult:
    """Evaluate thresholds: defaults, then ``dive_ci``'s rules, then ``rules`` (highest precedence)."""
    if numbers not in ("dive", "ocilens"):
        raise AnalysisError(f"numbers must be 'dive' or 'ocilens', not {numbers!r}")
    return _evaluate(image, rules, numbers, read_dive_ci(dive_ci) if dive_ci is not None else None)


def _evaluate(image: "Image", rules: dict[str, float | None] | None, numbers: str,
              file_rules: dict[str, float | None] | None) -> GateResult:
    """``check`` on a ``.dive-ci`` already read (the CLI reads it once, before the load, to fail fast)."""
    effective: dict[str, tuple[float | None, str]] = {k: (v, "default") for k, v in DEFAULT_RULES.items()}
    for k, v in (file_rules or {}).items():
        effective[k] = (v, ".dive-ci")
    for k, v in (rules or {}).items():
        if k not in RULE_NAMES:
            raise AnalysisError(f"unknown rule {k!r}; rules are {', '.join(RULE_NAMES)}")
        effective[k] = (_threshold(k, v, OPTION_NAMES[k]) if v is not None else None, "cli")
    b = image.bloat()
    d = b.dive
    user_bytes = d.user_bytes
    ours_user = _ratio(b.wasted_bytes, user_bytes)
    metrics = {"efficiency": b.efficiency, "wasted_bytes": b.wasted_bytes, "user_wasted_percent": ours_user,
               "dive_efficiency": d.efficiency, "dive_wasted_bytes": d.wasted_bytes,
               "dive_user_wasted_percent": d.user_wasted_percent, "shipped_bytes": b.shipped_bytes,
               "visible_bytes": b.visible_bytes, "user_bytes": user_bytes}
    prefix = "dive_" if numbers == "dive" else ""
    values = {"lowestEfficiency": metrics[f"{prefix}efficiency"],
              "highestWastedBytes": metrics[f"{prefix}wasted_bytes"],
              "highestUserWastedPercent": metrics[f"{prefix}user_wasted_percent"]}
    result = GateResult(image.reference, numbers, metrics)
    for name in RULE_NAMES:
        threshold, source = effective[name]
        value = values[name]
        if threshold is None:
            status = "skip"
        elif name == "lowestEfficiency":
            status = "fail" if value < threshold else "pass"
        else:  # NaN (a one-layer image's user waste) compares false: pass, as in dive
            status = "fail" if value > threshold else "pass"
        result.rules.append(Rule(name, threshold, value, status, source))
    return result
