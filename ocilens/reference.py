"""Image references (``[registry/]repository[:tag][@digest]``), parsed and normalized as docker does.

The grammar, the domain detection and the error order follow distribution/reference (``regexp.go``,
``reference.go``, ``normalize.go``) and opencontainers/go-digest, so ``alpine`` means
``docker.io/library/alpine:latest`` here exactly as it does for ``docker pull``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from .errors import InvalidReference

__all__ = [
    "Reference", "ParsedReference", "parse_reference", "parse_unnormalized", "validate_digest", "ambiguity_hint",
    "familiar_name", "split_host_port", "is_registry_host", "DEFAULT_DOMAIN", "LEGACY_DEFAULT_DOMAIN", "DEFAULT_TAG",
    "NAME_TOTAL_LENGTH_MAX",
]

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

# The rule names carried by InvalidReference.rule (one per error of distribution/reference and go-digest).
RULE_EMPTY = "empty"                    # ErrNameEmpty
RULE_FORMAT = "format"                  # ErrReferenceInvalidFormat
RULE_UPPERCASE = "lowercase"            # ErrNameContainsUppercase
RULE_TOO_LONG = "name-length"           # ErrNameTooLong
RULE_IDENTIFIER = "identifier"          # a bare 64-hex id is an image ID, not a repository
RULE_DIGEST_FORMAT = "digest-format"    # digest.ErrDigestInvalidFormat
RULE_DIGEST_LENGTH = "digest-length"    # digest.ErrDigestInvalidLength
RULE_DIGEST_ALGORITHM = "digest-algorithm"  # digest.ErrDigestUnsupported

# regexp.go, with Go's ASCII \w and [[:xdigit:]] spelled out (Python's \w is Unicode).
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = _DOMAIN_COMPONENT + r"(?:\." + _DOMAIN_COMPONENT + r")*"
_IPV6_ADDRESS = r"[a-fA-F0-9:]+"
_IPV6 = r"\[(?:" + _IPV6_ADDRESS + r")\]"
_HOST = r"(?:" + _DOMAIN_NAME + "|" + _IPV6 + ")"
_PORT = r"[0-9]+"
_DOMAIN_AND_PORT = _HOST + r"(?::" + _PORT + r")?"
_TAG = r"[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9A-Fa-f]{32,}"
_PATH_COMPONENT = _ALNUM + r"(?:" + _SEPARATOR + _ALNUM + r")*"
_REMOTE_NAME = _PATH_COMPONENT + r"(?:/" + _PATH_COMPONENT + r")*"
_NAME = r"(?:" + _DOMAIN_AND_PORT + r"/)?" + _REMOTE_NAME

_REFERENCE_RE = re.compile(r"(" + _NAME + r")(?::(" + _TAG + r"))?(?:@(" + _DIGEST + r"))?")
_ANCHORED_NAME_RE = re.compile(r"(?:(" + _DOMAIN_AND_PORT + r")/)?(" + _REMOTE_NAME + r")")
# The same domain grammar, with the name (or the IPv6 address inside its brackets) and the port as groups.
_HOST_PORT_RE = re.compile(r"(?:(" + _DOMAIN_NAME + r")|\[(" + _IPV6_ADDRESS + r")\])(?::(" + _PORT + r"))?")
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")
_TAG_RE = re.compile(_TAG)
# go-digest: the general digest shape, and the registered algorithms with their hex lengths.
_GO_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}
_SCHEME_RE = re.compile(r"(?i)(https?)://")
_TAG_CHARS_RE = re.compile(r"[0-9A-Za-z_][0-9A-Za-z_.-]*")
_HEX_RE = re.compile(r"[0-9A-Fa-f]+")
TAG_LENGTH_MAX = 128


class ParsedReference(NamedTuple):
    """A reference exactly as written, not normalized (distribution/reference's ``Parse``)."""

    domain: str
    path: str
    tag: str | None
    digest: str | None


def _fail(text: str, rule: str, message: str, hint: str | None = None) -> InvalidReference:
    """An InvalidReference naming the rule that failed."""
    return InvalidReference(f"invalid reference {text!r}: {message}", reference=text, rule=rule, hint=hint)


def validate_digest(digest: str, *, reference: str | None = None) -> str:
    """Return ``digest`` if go-digest's ``Parse`` accepts it, else raise InvalidReference naming why."""
    ref = digest if reference is None else reference
    algo, sep, encoded = digest.partition(":")
    if not sep or not algo or not encoded:
        raise _fail(ref, RULE_DIGEST_FORMAT, f"digest {digest!r} is not algorithm:hex")
    if algo not in _ALGORITHMS:
        if not _GO_DIGEST_RE.fullmatch(digest):
            raise _fail(ref, RULE_DIGEST_FORMAT, f"digest {digest!r} is malformed")
        raise _fail(ref, RULE_DIGEST_ALGORITHM, f"digest algorithm {algo!r} is not supported",
                    hint="use sha256, sha384 or sha512")
    if len(encoded) != _ALGORITHMS[algo]:
        raise _fail(ref, RULE_DIGEST_LENGTH,
                    f"{algo} digest must have {_ALGORITHMS[algo]} hex digits, not {len(encoded)}")
    if not re.fullmatch(r"[a-f0-9]+", encoded):
        raise _fail(ref, RULE_DIGEST_FORMAT, f"digest {digest!r} must be lowercase hex")
    return digest


def _check_surface(text: str) -> None:
    """Refuse surrounding whitespace and a URL scheme, with what to write instead."""
    if text != text.strip():
        raise _fail(text, RULE_FORMAT, "it has leading or trailing whitespace",
                    hint=f"remove the surrounding whitespace: {text.strip()!r}")
    scheme = _SCHEME_RE.match(text)
    if scheme:
        rest = text[scheme.end():].rstrip("/")
        raise _fail(text, RULE_FORMAT, f"a reference is not a URL: drop the {scheme.group(1).lower()}:// scheme",
                    hint=f"write {rest or 'host/repository[:tag]'!r} (plain HTTP is chosen with insecure=True or "
                         "--insecure, and is automatic on loopback)")


def _diagnose(text: str, shown: str) -> None:
    """Raise a specific error for the common ways a reference breaks the grammar (tag, digest); else return."""
    name, at, digest = text.partition("@")
    if at:
        algo, colon, encoded = digest.partition(":")
        if not digest or not encoded:
            raise _fail(shown, RULE_DIGEST_FORMAT, "the digest after '@' is empty",
                        hint="write repository@sha256:<64 hex digits>, or drop the '@'")
        if colon and algo in _ALGORITHMS and _HEX_RE.fullmatch(encoded) and len(encoded) != _ALGORITHMS[algo]:
            raise _fail(shown, RULE_DIGEST_LENGTH,
                        f"{algo} digest must have {_ALGORITHMS[algo]} hex digits, not {len(encoded)}",
                        hint="copy the whole digest (ocilens prints it in full)")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        tag = last.rsplit(":", 1)[1]
        if not tag:
            raise _fail(shown, RULE_FORMAT, "the tag after ':' is empty",
                        hint=f"write repository:tag, or drop the ':' (the tag defaults to {DEFAULT_TAG})")
        if len(tag) > TAG_LENGTH_MAX and _TAG_CHARS_RE.fullmatch(tag):
            raise _fail(shown, RULE_FORMAT, f"the tag is {len(tag)} characters; the limit is {TAG_LENGTH_MAX}",
                        hint=f"shorten the tag to at most {TAG_LENGTH_MAX} of [A-Za-z0-9_.-]")


def _parse(text: str, shown: str) -> ParsedReference:
    """``parse_unnormalized`` of ``text``, with errors naming ``shown`` (what the caller wrote)."""
    if text == "":
        raise _fail(shown, RULE_EMPTY, "repository name must have at least one component")
    m = _REFERENCE_RE.fullmatch(text)
    if m is None:
        _check_surface(shown)
        lower = text.lower()
        if lower != text and _REFERENCE_RE.fullmatch(lower):
            raise _fail(shown, RULE_UPPERCASE, "repository name must be lowercase")
        _diagnose(text, shown)
        raise _fail(shown, RULE_FORMAT, "not [registry/]repository[:tag][@digest]",
                    hint="repository path components are lowercase letters and digits separated by "
                         ". _ __ or dashes; tags are up to 128 of [A-Za-z0-9_.-]")
    name, tag, digest = m.group(1), m.group(2), m.group(3)
    nm = _ANCHORED_NAME_RE.fullmatch(name)
    domain, path = (nm.group(1) or "", nm.group(2)) if nm else ("", name)
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        raise _fail(shown, RULE_TOO_LONG,
                    f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters, not {len(path)}")
    if digest:
        validate_digest(digest, reference=shown)
    return ParsedReference(domain, path, tag or None, digest or None)


def parse_unnormalized(text: str) -> ParsedReference:
    """Parse ``text`` without normalizing it (``Parse`` of distribution/reference): no default domain or tag."""
    if not isinstance(text, str):
        raise InvalidReference(f"a reference is a string, not {type(text).__name__}", rule=RULE_FORMAT)
    return _parse(text, text)


def split_host_port(domain: str) -> tuple[str, int | None]:
    """A reference's domain as ``(host, port)``: ``host:5000`` -> ``("host", 5000)``, ``[::1]:5000`` ->
    ``("::1", 5000)``, ``ghcr.io`` -> ``("ghcr.io", None)``. A string outside the domain grammar is all host."""
    m = _HOST_PORT_RE.fullmatch(domain)
    if m is None:
        return domain, None
    return m.group(1) or m.group(2), int(m.group(3)) if m.group(3) else None


def is_registry_host(text: str) -> bool:
    """Whether ``text`` (no ``/``) names a registry, ``host[:port]``, rather than a Docker Hub repository
    ``name[:tag]``: ``localhost``, an IPv6 address in brackets, or a domain name with a dot, by the domain
    grammar (``alpine:3.19`` is a repository and its tag; ``127.0.0.1:5000`` a registry)."""
    m = _HOST_PORT_RE.fullmatch(text)
    if m is None:
        return False
    name = m.group(1)
    return name is None or name == "localhost" or "." in name


def _split_docker_domain(name: str) -> tuple[str, str]:
    """normalize.go's ``splitDockerDomain``: the registry, and the rest, with docker.io's defaults."""
    maybe_domain, sep, maybe_remote = name.partition("/")
    if not sep:
        return DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name
    if maybe_domain == "localhost":
        domain, remote = maybe_domain, maybe_remote
    elif maybe_domain == LEGACY_DEFAULT_DOMAIN:
        domain, remote = DEFAULT_DOMAIN, maybe_remote
    elif "." in maybe_domain or ":" in maybe_domain:
        domain, remote = maybe_domain, maybe_remote
    elif maybe_domain.lower() != maybe_domain:
        domain, remote = maybe_domain, maybe_remote  # uppercase namespaces do not exist: a host name
    else:
        domain, remote = DEFAULT_DOMAIN, name
    if domain == DEFAULT_DOMAIN and "/" not in remote:
        remote = OFFICIAL_REPO_PREFIX + remote
    return domain, remote


@dataclass(frozen=True)
class Reference:
    """A normalized reference: registry and repository always set; a tag, a digest, or both."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> "Reference":
        """Parse and normalize ``text`` (see :func:`parse_reference`)."""
        return parse_reference(text)

    @property
    def name(self) -> str:
        """``registry/repository``, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def pinned(self) -> str:
        """What to ask the registry for: the digest when there is one (it wins over the tag), else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def familiar(self) -> str:
        """docker's short form: ``alpine:latest``, ``user/app:1``, ``ghcr.io/o/app@sha256:...``."""
        registry, path = self.registry, self.repository
        name = f"{registry}/{path}"
        if registry == DEFAULT_DOMAIN:
            name = path
            rest = path[len(OFFICIAL_REPO_PREFIX):]
            if path.startswith(OFFICIAL_REPO_PREFIX) and "/" not in rest:
                name = rest
        return name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def with_digest(self, digest: str) -> "Reference":
        """The same repository pinned to ``digest`` (the tag is kept for display)."""
        return Reference(self.registry, self.repository, self.tag, validate_digest(digest, reference=str(self)))

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def parse_reference(text: "str | Reference") -> Reference:
    """Parse ``text`` as docker does (``ParseNormalizedNamed`` + ``TagNameOnly``); raise InvalidReference.

    ``alpine`` -> ``docker.io/library/alpine:latest``; a first component containing ``.`` or ``:``, or
    equal to ``localhost``, is a registry; a reference with both a tag and a digest keeps both, and the
    digest is what gets pulled.
    """
    if isinstance(text, Reference):
        return text
    if not isinstance(text, str):
        raise InvalidReference(f"a reference is a string, not {type(text).__name__}", rule=RULE_FORMAT)
    if text == "":
        raise _fail(text, RULE_EMPTY, "an image reference cannot be empty")
    _check_surface(text)
    if _IDENTIFIER_RE.fullmatch(text):
        raise _fail(text, RULE_IDENTIFIER, "a 64-character hexadecimal string is an image ID, not a repository",
                    hint="pin a digest as repository@sha256:<hex>")
    domain, remainder = _split_docker_domain(text)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        raise _fail(text, RULE_UPPERCASE, f"repository name ({remote}) must be lowercase")
    parsed = _parse(f"{domain}/{remainder}", text)
    if not parsed.domain:
        # Unreachable for valid input (the domain was put there); kept so a grammar change cannot
        # silently produce a Reference without a registry.
        raise _fail(text, RULE_FORMAT, "no registry could be determined")
    tag = parsed.tag
    if tag is None and parsed.digest is None:
        tag = DEFAULT_TAG
    return Reference(parsed.domain, parsed.path, tag, parsed.digest)


def familiar_name(text: str) -> str:
    """docker's short form of a reference as written (``Reference.familiar``): ``docker.io/library/alpine``,
    ``library/alpine`` and ``alpine`` are all ``alpine:latest``; two spellings of one image give one name.
    Text that is not a reference is returned as it is."""
    try:
        return parse_reference(text).familiar
    except InvalidReference:
        return text


def ambiguity_hint(text: str) -> str | None:
    """A hint for a reference that parses, but probably not as meant (None when there is nothing to say).

    ``127.0.0.1:5000`` or ``localhost:5000`` (no repository) is Docker Hub's ``library/127.0.0.1`` with tag
    ``5000`` to docker; ``UPPER/case`` names the registry host ``UPPER``. ocilens keeps docker's reading and
    adds this hint to the error that reading leads to.
    """
    if not isinstance(text, str):
        return None
    text = text.strip().removeprefix("docker://")
    name = text.partition("@")[0]
    if "/" not in name:
        host, sep, tag = name.partition(":")
        if host == "localhost" or "." in host:
            read_as = f"the Docker Hub image library/{host}" + (f" with tag {tag}" if sep else "")
            return (f"did you mean {name}/REPO[:TAG]? {text!r} has no repository, so docker's grammar reads it "
                    f"as {read_as}")
        return None
    first, _, rest = name.partition("/")
    if first != first.lower() and "." not in first and ":" not in first:
        repository = rest.rsplit(":", 1)[0] if ":" in rest.rsplit("/", 1)[-1] else rest
        return (f"an uppercase first component is read as a registry host name: {first!r} is taken as the "
                f"registry and {repository!r} as the repository; Docker Hub names are lowercase "
                f"(did you mean {first.lower() + '/' + rest!r}?)")
    return None
