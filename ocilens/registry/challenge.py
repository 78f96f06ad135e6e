"""``WWW-Authenticate`` parsing (RFC 7235): several challenges, quoted values with commas and escapes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Challenge", "parse_www_authenticate"]

# RFC 7230 token characters, plus "/" so that unquoted realms (seen in the wild) survive.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z/:]+")
_SPACE = " \t"


@dataclass(frozen=True)
class Challenge:
    """One authentication challenge: its scheme (lower case) and its parameters (names lower case)."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def scopes(self) -> tuple[str, ...]:
        """The ``scope`` parameter split on spaces: a registry may ask for several at once."""
        return tuple(s for s in self.params.get("scope", "").split(" ") if s)


def _skip(value: str, pos: int, chars: str) -> int:
    """The first position at or after ``pos`` whose character is not in ``chars``."""
    while pos < len(value) and value[pos] in chars:
        pos += 1
    return pos


def _quoted(value: str, pos: int) -> tuple[str, int]:
    """The quoted-string starting at ``pos`` (on the opening quote), unescaped, and the position after it."""
    out: list[str] = []
    pos += 1
    while pos < len(value):
        ch = value[pos]
        if ch == "\\" and pos + 1 < len(value):
            out.append(value[pos + 1])
            pos += 2
            continue
        if ch == '"':
            return "".join(out), pos + 1
        out.append(ch)
        pos += 1
    return "".join(out), pos  # unterminated: take the rest, as browsers do


def parse_www_authenticate(*values: str) -> list[Challenge]:
    """Every challenge in one or more ``WWW-Authenticate`` header values, in order.

    ``Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull,push
    repository:b:pull"`` gives one Bearer challenge whose ``scopes`` are both repository scopes; commas
    inside quotes belong to the value. Repeated ``scope`` parameters accumulate.
    """
    challenges: list[Challenge] = []
    for value in values:
        current: Challenge | None = None
        pos = 0
        while pos < len(value):
            pos = _skip(value, pos, _SPACE + ",")
            m = _TOKEN.match(value, pos)
            if m is None:
                pos += 1  # stray character: skip it rather than give up on the whole header
                continue
            name, after = m.group(), m.end()
            eq = _skip(value, after, _SPACE)
            if current is not None and eq < len(value) and value[eq] == "=":
                vpos = _skip(value, eq + 1, _SPACE)
                if vpos < len(value) and value[vpos] == '"':
                    val, pos = _quoted(value, vpos)
                else:
                    vm = _TOKEN.match(value, vpos)
                    val, pos = (vm.group(), vm.end()) if vm else ("", vpos)
                key = name.lower()
                if key == "scope" and current.params.get("scope"):
                    val = f"{current.params['scope']} {val}"
                current.params[key] = val
            else:
                current = Challenge(name.lower(), {})
                challenges.append(current)
                pos = after
    return challenges
