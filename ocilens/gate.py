"""The CI gate: thresholds on efficiency and waste, from the command line or dive's ``.dive-ci`` file.

Rules and their defaults are dive's: ``lowestEfficiency`` 0.9, ``highestUserWastedPercent`` 0.1,
``highestWastedBytes`` disabled. By default the rules are checked against dive's numbers, so a team's
existing thresholds mean the same thing; ``numbers="ocilens"`` checks ocilens's stricter accounting.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import AnalysisError

if TYPE_CHECKING:
    from .image import Image

__all__ = ["Rule", "GateResult", "parse_size", "read_dive_ci", "check", "DEFAULT_RULES", "SCHEMA"]

SCHEMA = "ocilens.check/v1"
RULE_NAMES = ("lowestEfficiency", "highestWastedBytes", "highestUserWastedPercent")
DEFAULT_RULES: dict[str, float | None] = {"lowestEfficiency": 0.9, "highestWastedBytes": None,
                                          "highestUserWastedPercent": 0.1}
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
          "t": 1000**4, "tb": 1000**4, "ki": 1024, "kib": 1024, "mi": 1024**2, "mib": 1024**2, "gi": 1024**3,
          "gib": 1024**3, "ti": 1024**4, "tib": 1024**4}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")
_DISABLED = ("disabled", "off", "false", "none", "")


def parse_size(text: str | int | float) -> int:
    """``20MB`` -> 20000000, ``1.5GiB`` -> 1610612736, ``1234`` -> 1234 (SI and IEC units, as dive)."""
    if isinstance(text, (int, float)):
        return int(text)
    m = _SIZE.match(text)
    if not m or m.group(2).lower() not in _UNITS:
        raise AnalysisError(f"not a size: {text!r}", hint="write bytes as 1234, 20MB, 512KiB, 1.5GB")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _threshold(name: str, value: Any, where: str) -> float | None:
    if value is None or isinstance(value, str) and value.strip().strip("\"'").lower() in _DISABLED:
        return None
    if name == "highestWastedBytes":
        return float(parse_size(value.strip().strip("\"'") if isinstance(value, str) else value))
    try:
        number = float(value.strip().strip("\"'") if isinstance(value, str) else value)
    except ValueError:
        raise AnalysisError(f"{where}: {name} must be a number between 0 and 1, not {value!r}") from None
    if not 0.0 <= number <= 1.0 or math.isnan(number):
        raise AnalysisError(f"{where}: {name} must be between 0 and 1 (a ratio, 0.9 = 90%), not {number}")
    return number


def read_dive_ci(path: str | Path) -> dict[str, float | None]:
    """The ``rules:`` of a ``.dive-ci`` file (the YAML subset dive documents: a mapping of scalars)."""
    rules: dict[str, float | None] = {}
    in_rules = False
    text = Path(path).read_text(encoding="utf-8")
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        indented = line[0] in " \t"
        key, sep, value = line.strip().partition(":")
        if not sep or not key or " " in key.strip():
            raise AnalysisError(f"{where}: cannot parse {raw.strip()!r}", hint="expected `key: value` lines under `rules:`")
        key = key.strip()
        if not indented:
            in_rules = key == "rules" and not value.strip()
            continue
        if not in_rules:
            continue
        if key not in RULE_NAMES:
            raise AnalysisError(f"{where}: unknown rule {key!r}", hint=f"dive's rules are {', '.join(RULE_NAMES)}")
        rules[key] = _threshold(key, value.strip(), where)
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
            return None if isinstance(x, float) and math.isnan(x) else x

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
        effective[k] = (_threshold(k, v, "threshold") if v is not None else None, "cli")
    b = image.bloat()
    d = b.dive
    user_bytes = d.user_bytes
    ours_user = (b.wasted_bytes / user_bytes) if user_bytes else float("nan")
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
