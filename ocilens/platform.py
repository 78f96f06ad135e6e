"""Platforms (``os/arch[/variant]``): parsing, the host's default, and matching index entries."""

from __future__ import annotations

import platform as _platform
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import UsageError

__all__ = ["Platform", "host_platform"]

_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm",
                 "armel": "arm", "i386": "386", "i686": "386"}


@dataclass(frozen=True, order=True)
class Platform:
    """An image platform as OCI index entries describe it."""

    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: "str | Platform", *, reference: str | None = None) -> "Platform":
        """``linux/arm64/v8`` -> Platform; architecture aliases (``x86_64``, ``aarch64``) normalized.

        A string that is not ``os/architecture[/variant]`` raises UsageError; ``reference`` (the image the
        platform was asked for) is named in it.
        """
        if isinstance(text, Platform):
            return text
        parts = [p.strip().lower() for p in str(text).split("/")]
        if not isinstance(text, str) or len(parts) not in (2, 3) or not all(parts):
            subject = f" for {reference}" if reference else ""
            raise UsageError(f"invalid platform {text!r}{subject}: not os/architecture[/variant]", reference=reference,
                             hint="write it as os/architecture[/variant], e.g. linux/amd64 or linux/arm64/v8 "
                                  f"(`ocilens platforms {reference or 'REF'}` lists what an image offers)")
        arch = _ARCH_ALIASES.get(parts[1], parts[1])
        return cls(parts[0], arch, parts[2] if len(parts) == 3 else None).normalized()

    @classmethod
    def from_json(cls, obj: Mapping[str, Any] | None) -> "Platform | None":
        """From an index entry's or config's ``os``/``architecture``/``variant`` fields."""
        if not obj or not obj.get("os") or not obj.get("architecture"):
            return None
        return cls(str(obj["os"]), str(obj["architecture"]), obj.get("variant") or None).normalized()

    def normalized(self) -> "Platform":
        """containerd's normalization: arm64's default variant is v8, arm's is v7."""
        arch = _ARCH_ALIASES.get(self.architecture, self.architecture)
        variant = self.variant
        if arch == "arm64" and variant == "v8":
            variant = None
        if arch == "arm" and variant is None:
            variant = "v7"
        return Platform(self.os, arch, variant)

    def matches(self, other: "Platform | None") -> bool:
        """True when ``other`` (an index entry's platform) is this one."""
        return other is not None and self.normalized() == other.normalized()

    def serves(self, other: "Platform | None", *, variant_given: bool = True) -> bool:
        """True when an image of ``other`` is what asking for this platform gets: the same one; any arm64
        variant for plain arm64 (an arm64 host runs them all); the same os and architecture when ``other``
        did not give its variant (arm's normalization would otherwise make it v7)."""
        if other is None:
            return False
        if self.matches(other):
            return True
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        return not variant_given or (self.architecture == "arm64" and self.normalized().variant is None)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def host_platform() -> Platform:
    """This machine's platform, as a container runtime would pick it (``linux/<arch>``)."""
    machine = _platform.machine().lower() or "amd64"
    return Platform.parse(f"linux/{_ARCH_ALIASES.get(machine, machine)}")
