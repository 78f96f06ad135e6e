"""The CI gate: thresholds on efficiency, waste and the download the fixes would save, from the command line or
dive's ``.dive-ci`` file.

Rules and their defaults are dive's: ``lowestEfficiency`` 0.9, ``highestUserWastedPercent`` 0.1,
``highestWastedBytes`` disabled. By default the rules are checked against dive's numbers, so a team's
existing thresholds mean the same thing; ``numbers="ocilens"`` checks ocilens's stricter accounting.
ocilens adds ``highestDownloadSavings`` (disabled by default): fail when the fixes of ``bloat().advice`` would
save more download than this size. dive ignores the key, so one ``.dive-ci`` serves both tools.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .errors import AnalysisError, UsageError
from .dive import go_ratio
from .units import parse_size

if TYPE_CHECKING:
    from .image import Image

__all__ = ["Rule", "GateResult", "parse_size", "parse_rules", "read_dive_ci", "check", "DEFAULT_RULES", "SCHEMA"]

SCHEMA = "ocilens.check/v1"
RULE_NAMES = ("lowestEfficiency", "highestWastedBytes", "highestUserWastedPercent", "highestDownloadSavings")
#: The rules dive knows; the others are ocilens's own (dive skips them).
DIVE_RULES = RULE_NAMES[:3]
#: Rules whose threshold is a size (``20MB``), not a ratio.
SIZE_RULES = ("highestWastedBytes", "highestDownloadSavings")
DEFAULT_RULES: dict[str, float | None] = {"lowestEfficiency": 0.9, "highestWastedBytes": None,
                                          "highestUserWastedPercent": 0.1, "highestDownloadSavings": None}
_DISABLED = ("disabled", "off", "false", "none", "")


OPTION_NAMES = {"lowestEfficiency": "--lowest-efficiency", "highestWastedBytes": "--highest-wasted-bytes",
                "highestUserWastedPercent": "--highest-user-wasted-percent",
                "highestDownloadSavings": "--highest-download-savings"}


def _threshold(name: str, value: Any, where: str) -> float | None:
    """A rule's threshold: a ratio in 0..1, or a size for ``SIZE_RULES``; None when disabled."""
    if isinstance(value, str):
        value = value.strip().strip("\"'")
        if value.lower() in _DISABLED:
            return None
    elif value is None:
        return None
    if name in SIZE_RULES:
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


_HINT = "write `rules:` followed by indented `key: value` lines (YAML), as dive reads them"
_RULES_BY_LOWER = {name.lower(): name for name in RULE_NAMES}  # dive's config (viper) ignores key case


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


def _kind(node: Any) -> str:
    return {"MappingNode": "mapping", "SequenceNode": "list"}.get(type(node).__name__, "value")


def read_dive_ci(path: str | Path) -> dict[str, float | None]:
    """The ``rules:`` of a ``.dive-ci`` file, read as dive reads it: YAML, keys in any case. Unknown rules
    are ignored with a warning, as dive ignores them; what is not YAML, or not a mapping of rules to
    thresholds, is an error naming the line."""
    import yaml

    text = _read_text(path)
    try:
        doc = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        # the line where the broken construct starts (a flow mapping, a quoted scalar), else where it broke
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        raise AnalysisError(f"{where}: not YAML: {problem}{f' ({context})' if context else ''}",
                            hint=_HINT) from None
    if doc is None:
        return {}
    if not isinstance(doc, yaml.MappingNode):
        raise AnalysisError(f"{path}:{doc.start_mark.line + 1}: the document is a {_kind(doc)}; dive reads a "
                            "mapping with `rules`", hint=_HINT)
    rules: dict[str, float | None] = {}
    for key, value in doc.value:
        if not isinstance(key, yaml.ScalarNode) or key.value.lower() != "rules":
            continue
        where = f"{path}:{value.start_mark.line + 1}"
        if isinstance(value, yaml.ScalarNode) and value.value in ("", "~", "null"):
            continue  # `rules:` with nothing under it
        if not isinstance(value, yaml.MappingNode):
            raise AnalysisError(f"{where}: `rules` must be a mapping of rule names to thresholds, not a "
                                f"{_kind(value)}", hint=_HINT)
        for rule, threshold in value.value:
            where = f"{path}:{rule.start_mark.line + 1}"
            name = _RULES_BY_LOWER.get(str(rule.value).lower()) if isinstance(rule, yaml.ScalarNode) else None
            if name is None:
                warnings.warn(f"{where}: unknown rule {rule.value!r} ignored (dive's rules are "
                              f"{', '.join(DIVE_RULES)}; ocilens adds {', '.join(RULE_NAMES[len(DIVE_RULES):])})",
                              stacklevel=2)
                continue
            if not isinstance(threshold, yaml.ScalarNode):
                raise AnalysisError(f"{where}: {name} must be a number or a size, not a {_kind(threshold)}",
                                    hint=_HINT)
            rules[name] = _threshold(name, threshold.value, where)
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


def parse_rules(rules: Mapping[str, Any] | None) -> dict[str, float | None]:
    """Thresholds given by name (ratios in 0..1, a size for ``SIZE_RULES``, None to disable), checked
    and parsed; an error names the option. The CLI calls it before the (slow) load, to fail fast."""
    parsed: dict[str, float | None] = {}
    for k, v in (rules or {}).items():
        if k not in RULE_NAMES:
            raise AnalysisError(f"unknown rule {k!r}; rules are {', '.join(RULE_NAMES)}")
        parsed[k] = _threshold(k, v, OPTION_NAMES[k]) if v is not None else None
    return parsed


def check(image: "Image", rules: Mapping[str, Any] | None = None, *, numbers: str = "dive",
          dive_ci: str | Path | Mapping[str, float | None] | None = None) -> GateResult:
    """Evaluate thresholds: defaults, then ``dive_ci``'s rules (a file, or what ``read_dive_ci`` read from
    one), then ``rules`` (highest precedence)."""
    if numbers not in ("dive", "ocilens"):
        raise AnalysisError(f"numbers must be 'dive' or 'ocilens', not {numbers!r}")
    file_rules = read_dive_ci(dive_ci) if isinstance(dive_ci, (str, Path)) else dive_ci
    effective: dict[str, tuple[float | None, str]] = {k: (v, "default") for k, v in DEFAULT_RULES.items()}
    for k, v in (file_rules or {}).items():
        effective[k] = (v, ".dive-ci")
    for k, v in parse_rules(rules).items():
        effective[k] = (v, "cli")
    b = image.bloat()
    d = b.dive
    user_bytes = d.user_bytes
    ours_user = go_ratio(b.wasted_bytes, user_bytes)
    metrics = {"efficiency": b.efficiency, "wasted_bytes": b.wasted_bytes, "user_wasted_percent": ours_user,
               "dive_efficiency": d.efficiency, "dive_wasted_bytes": d.wasted_bytes,
               "dive_user_wasted_percent": d.user_wasted_percent, "shipped_bytes": b.shipped_bytes,
               "visible_bytes": b.visible_bytes, "user_bytes": user_bytes,
               "wasted_download_bytes": b.wasted_download_bytes}
    prefix = "dive_" if numbers == "dive" else ""
    values: dict[str, Any] = {"lowestEfficiency": metrics[f"{prefix}efficiency"],
                              "highestWastedBytes": metrics[f"{prefix}wasted_bytes"],
                              "highestUserWastedPercent": metrics[f"{prefix}user_wasted_percent"],
                              "highestDownloadSavings": None}
    if effective["highestDownloadSavings"][0] is not None:  # the advice reads layer samples: only when asked
        savings = int(b.advice["download_bytes_saved"].sum())
        metrics["download_savings"] = values["highestDownloadSavings"] = savings
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
