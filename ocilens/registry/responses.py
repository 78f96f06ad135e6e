"""Registry error answers (``{"errors": [{"code", "message"}]}``) turned into typed ocilens errors."""

from __future__ import annotations

import json

import httpx

from ..errors import AuthenticationError, RateLimited, RegistryError, RegistryNotFound, RegistryUnavailable

__all__ = ["error_details", "registry_error", "read_error_body"]

_MAX_ERROR_BODY = 64 * 1024


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


def error_details(body: bytes) -> tuple[tuple[str, ...], str]:
    """The registry error codes and a ``CODE: message; ...`` summary from an error body."""
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        text = body.decode("utf-8", "replace").strip()
        return (), text[:200]
    errors = obj.get("errors") if isinstance(obj, dict) else None
    if not isinstance(errors, list):
        if isinstance(obj, dict) and obj.get("details"):  # token services: {"details": "..."}
            return (), str(obj["details"])[:200]
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
    return tuple(codes), "; ".join(p for p in parts if p)


def registry_error(resp: httpx.Response, body: bytes, *, what: str, reference: str | None,
                   auth_state: str = "none", note: str | None = None) -> RegistryError:
    """The typed error for a failed response: class by status, message with reference, URL and codes.

    ``auth_state`` says what the request carried (``none``, ``basic``, ``token``, ``anonymous-token``).
    A 401 despite an anonymous bearer token is what Docker Hub answers for a repository that does not
    exist, so it reads "not found or needs authentication". ``note`` (why the docker config's
    credentials could not be used) is added to the hint of a 401.
    """
    status = resp.status_code
    codes, detail = error_details(body)
    url = str(resp.request.url) if resp.request is not None else None
    subject = f"{what} of {reference}" if reference else what
    where = f"HTTP {status} from {resp.request.method} {url}" if url else f"HTTP {status}"
    tail = f": {detail}" if detail else ""

    def make(cls: type[RegistryError], message: str, hint: str | None = None) -> RegistryError:
        return cls(message, reference=reference, url=url, status=status, codes=codes, hint=hint)

    if status == 401:
        extra = f" ({note})" if note else ""
        if auth_state == "anonymous-token":
            return make(RegistryNotFound, f"{subject}: repository not found or needs authentication ({where}{tail})",
                        "check the name; if the repository is private, log in (docker login) "
                        f"or pass auth=(user, password){extra}")
        if auth_state == "token":
            return make(AuthenticationError, f"{subject}: the credentials do not grant pull access, or the "
                        f"repository does not exist ({where}{tail})", "check the name and the account's permissions")
        if auth_state == "basic":
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
        return make(RegistryNotFound, f"{subject}: {why} ({where}{tail})")
    if status == 429:
        return make(RateLimited, f"{subject}: rate limited beyond the retry budget ({where}{tail})",
                    "wait and try again, or log in for a higher pull limit")
    if status >= 500:
        return make(RegistryUnavailable, f"{subject}: the registry kept failing ({where}{tail})",
                    "the registry is having trouble; try again later")
    return make(RegistryError, f"{subject}: unexpected answer ({where}{tail})")
