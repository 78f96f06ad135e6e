"""The CI gate: thresholds on efficiency and waste, from the command line or dive's ``.dive-ci`` file.

Rules and their defaults are dive's: ``lowestEfficiency`` 0.9, ``highestUserWastedPercent`` 0.1,
``highestWastedBytes`` disabled. By default the rules are checked against dive's numbers, so a team's
existing thresholds mean the same thing; ``numbers="ocilens"`` checks ocilens's stricter accounting.
"""

from __future__ import annotations

import math
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


def _flow_mapping(text: str, where: str) -> list[tuple[str, str]]:
    """``{a: 1, b: 2}`` -> [("a", "1"), ("b", "2")] (YAML's flow style, scalars only)."""
    body = text.strip()
    if not (body.startswith("{") and body.endswith("}")):
        raise AnalysisError(f"{where}: cannot parse {text!r}", hint="expected `rules:` followed by `key: value` lines")
    pairs = []
    for item in filter(None, (x.strip() for x in body[1:-1].split(","))):
        key, sep, value = item.partition(":")
        if not sep:
            raise AnalysisError(f"{where}: cannot parse {item!r} in {text!r}")
        pairs.append((key.strip().strip("\"'"), value.strip()))
    return pairs


def read_dive_ci(path: str | Path) -> dict[str, float | None]:
    """The ``rules:`` of a ``.dive-ci`` file: the YAML subset dive's files use (a block or flow mapping of
    scalars, comments, ``---``). Unknown rules are ignored with a warning, as dive ignores them."""
    rules: dict[str, float | None] = {}
    in_rules = False
    text = Path(path).read_text(encoding="utf-8")

    def take(key: str, value: str, where: str) -> None:
        if key not in RULE_NAMES:
            warnings.warn(f"{where}: unknown rule {key!r} ignored (dive's rules are {', '.join(RULE_NAMES)})",
                          stacklevel=4)
            return
        rules[key] = _threshold(key, value, where)

    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip() or line.strip() in ("---", "..."):
            continue
        where = f"{path}:{lineno}"
        indented = line[0] in " \t"
        key, sep, value = line.strip().partition(":")
        key = key.strip().strip("\"'")
        if not sep or not key or " " in key:
            raise AnalysisError(f"{where}: cannot parse {raw.strip()!r}",
                                hint="expected `rules:` followed by indented `key: value` lines")
        if not indented:
            in_rules = key == "rules"
            if in_rules and value.strip():
                for k, v in _flow_mapping(value, where):
                    take(k, v, where)
                in_rules = False
            continue
        if in_rules:
            take(key, value, where)
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
    effective: dict[str, tuple[float | None, str]] = {k: (v, "default") for k, v in DEFAULT_RULES.items()}
    if dive_ci is not None:
        for k, v in read_dive_ci(dive_ci).items():
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
