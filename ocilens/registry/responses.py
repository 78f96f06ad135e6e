"""Registry error answers (``{"errors": [{"code", "message"}]}``) turned into typed ocilens errors."""

from __future__ import annotations

import html
import json
import re

import httpx

from ..errors import (
    AuthenticationError,
    OcilensError,
    RateLimited,
    RegistryError,
    RegistryNotFound,
    RegistryUnavailable,
)
from .credentials import Credentials

__all__ = ["error_details", "registry_error", "read_error_body", "one_line", "flatten", "add_hint"]

_MAX_ERROR_BODY = 64 * 1024
_MAX_DETAIL = 160
_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_DROP_RE = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG_RE = re.compile(r"<[^>]*>")


def one_line(text: str, limit: int = _MAX_DETAIL) -> str:
    """A body as a short single line: an HTML page by its title (else its text), whitespace collapsed."""
    text = text.strip()
    if text.startswith("<"):
        title = _TITLE_RE.search(text)
        text = title.group(1) if title and title.group(1).strip() else _TAG_RE.sub(" ", _DROP_RE.sub(" ", text))
        text = "HTML page: " + html.unescape(text).strip() if text.strip() else "an HTML page"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


def flatten(exc: OcilensError) -> str:
    """An error's message and hint as one line (``message; hint``), to quote inside another error."""
    return f"{exc.message}; {exc.hint}" if exc.hint else exc.message


def read_error_body(resp: httpx.Response) -> bytes:
    """Up to 64 KiB of a (streamed) error response's body, then close it."""
    chunks: list[bytes] = []
    seen = 0
    try:
        for chunk in resp.iter_bytes():
            chunks.append(chunk)
            seen += len(chunk)
            if seen >= _MAX_ERROR_BODY:
                break
    except (httpx.TransportError, httpx.StreamError):
        pass  # the status line is what matters; a body cut short only loses detail
    finally:
        resp.close()
    return b"".join(chunks)[:_MAX_ERROR_BODY]


def add_hint(exc: OcilensError, hint: str) -> OcilensError:
    """Put ``hint`` before the error's own hint (in ``hint`` and in its message); returns ``exc``."""
    exc.hint = f"{hint}; {exc.hint}" if exc.hint else hint
    exc.args = (f"{exc.message}\n  hint: {exc.hint}", *exc.args[1:])
    return exc


def error_details(body: bytes) -> tuple[tuple[str, ...], str]:
    """The registry error codes and a ``CODE: message; ...`` summary from an error body."""
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return (), one_line(body.decode("utf-8", "replace"))
    errors = obj.get("errors") if isinstance(obj, dict) else None
    if not isinstance(errors, list):
        if isinstance(obj, dict) and obj.get("details"):  # token services: {"details": "..."}
            return (), one_line(str(obj["details"]))
        return (), ""
    codes: list[str] = []
    parts: list[str] = []
    for err in errors:
        if not isinstance(err, dict):
            continue
        code = str(err.get("code") or "")
        msg = str(err.get("message") or "")
        if code:
            codes.append(code)
        parts.append(f"{code}: {msg}" if code and msg else code or msg)
    return tuple(codes), one_line("; ".join(p for p in parts if p), 4 * _MAX_DETAIL)


def _not_found_hint(codes: tuple[str, ...], url: str | None, registry: str | None, what: str) -> str:
    """What to check after a 404: the tag or digest, the repository name, or a blob the registry lost."""
    if what == "token request":
        return (f"the token service URL that {registry or 'the registry'} names in its WWW-Authenticate realm "
                "does not exist; check the registry's token realm (auth.token.realm)")
    path = httpx.URL(url).path if url else ""
    host = registry or (httpx.URL(url).netloc.decode("ascii", "replace") if url else "")
    name = path[len("/v2/"):].rsplit("/", 2)[0] if path.startswith("/v2/") and path.count("/") >= 4 else ""
    if "BLOB_UNKNOWN" in codes or "/blobs/" in path:
        return ("the registry does not hold a blob that the manifest names (an interrupted push, or garbage "
                "collection); push the image again")
    if "NAME_UNKNOWN" in codes:
        return f"check the repository name{f' ({name})' if name else ''} and the registry{f' ({host})' if host else ''}"
    if name and host:
        return (f"check the repository name and the tag or digest: `skopeo list-tags docker://{host}/{name}` "
                "lists the tags, and "
                f"`ocilens platforms {host}/{name}:TAG` the platforms a tag offers")
    return "check the repository name and the tag or digest"


def registry_error(resp: httpx.Response, body: bytes, *, what: str, reference: str | None,
                   auth_state: str = "none", note: str | None = None,
                   credentials: Credentials | None = None, registry: str | None = None) -> RegistryError:
    """The typed error for a failed response: class by status, message with reference, URL and codes.

    ``auth_state`` says what the request carried (``none``, ``basic``, ``token``, ``anonymous-token``).
    A 401 despite an anonymous bearer token is what Docker Hub answers for a repository that does not
    exist, so it reads "not found or needs authentication". ``note`` (why the docker config's
    credentials could not be used) is added to the hint of a 401; ``credentials`` (those sent with
    Basic auth) are named when the registry rejects them.
    """
    status = resp.status_code
    codes, detail = error_details(body)
    url = str(resp.request.url) if resp.request is not None else None
    subject = f"{what} of {reference}" if reference else what
    where = f"HTTP {status} from {resp.request.method} {url}" if url else f"HTTP {status}"
    tail = f": {detail}" if detail else ""
    host = registry or (httpx.URL(url).netloc.decode("ascii", "replace") if url else "the registry")

    def make(cls: type[RegistryError], message: str, hint: str | None = None) -> RegistryError:
        return cls(message, reference=reference, url=url, status=status, codes=codes, hint=hint)

    if status == 401:
        extra = f"; {note}" if note else ""
        if auth_state == "anonymous-token":
            return make(RegistryNotFound, f"{subject}: repository not found or needs authentication ({where}{tail})",
                        "check the name; if the repository is private, log in (docker login) "
                        f"or pass auth=(user, password){extra}")
        if auth_state == "token":
            return make(AuthenticationError, f"{subject}: the credentials do not grant pull access, or the "
                        f"repository does not exist ({where}{tail})", "check the name and the account's permissions")
        if auth_state == "basic":
            if credentials is not None:
                user = f" for user {credentials.username!r}" if credentials.username else ""
                return make(AuthenticationError, f"{subject}: {host} rejected the credentials{user} from "
                            f"{credentials.origin} ({where}{tail})", credentials.fix(host))
            return make(AuthenticationError, f"{subject}: credentials rejected ({where}{tail})",
                        "check the user name and password (or token)")
        return make(AuthenticationError, f"{subject}: the registry needs credentials ({where}{tail})",
                    f"log in (docker login) or pass auth=(user, password){extra}")
    if status == 403:
        return make(AuthenticationError, f"{subject}: access denied ({where}{tail})",
                    "these credentials do not grant pull access to this repository")
    if status == 404:
        known = {"MANIFEST_UNKNOWN": "no such tag or digest", "NAME_UNKNOWN": "no such repository",
                 "BLOB_UNKNOWN": "no such blob"}
        why = next((known[c] for c in codes if c in known), "not found")
        return make(RegistryNotFound, f"{subject}: {why} ({where}{tail})",
                    _not_found_hint(codes, url, registry, what))
    if status == 429:
        return make(RateLimited, f"{subject}: rate limited beyond the retry budget ({where}{tail})",
                    "wait and try again, or log in for a higher pull limit")
    if status >= 500:
        return make(RegistryUnavailable, f"{subject}: the registry kept failing ({where}{tail})",
                    "the registry is having trouble; try again later")
    return make(RegistryError, f"{subject}: unexpected answer ({where}{tail})")
