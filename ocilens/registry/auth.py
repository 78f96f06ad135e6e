"""Registry authentication state: the challenge seen, Basic credentials, bearer tokens per scope set.

The flow of the distribution token spec: a 401 names a realm, service and scope(s); the token service
(GET realm?service=..&scope=.., with Basic credentials if the user has any, or an OAuth2 POST with an
identity token) answers ``{"token" | "access_token", "expires_in", "issued_at"}``; tokens are reused
until shortly before they expire, then fetched again. Thread-safe: parallel blob downloads that all
hit a 401 fetch one token between them.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import httpx

from ..errors import AuthenticationError
from .challenge import Challenge, parse_www_authenticate
from .credentials import Credentials
from .responses import error_details, one_line, registry_error

if TYPE_CHECKING:
    from .session import RegistrySession

__all__ = ["Authenticator", "AuthState", "basic_header", "pull_scope"]

DEFAULT_EXPIRES_IN = 60
_MAX_TOKEN_BODY = 1 << 20


def pull_scope(repository: str) -> str:
    """The token scope for pulling ``repository``."""
    return f"repository:{repository}:pull"


def basic_header(username: str, password: str) -> str:
    """An ``Authorization: Basic`` value."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float  # time.monotonic() clock
    anonymous: bool


class AuthState:
    """What was sent with a request, so that a final 401 can be explained."""

    NONE = "none"
    BASIC = "basic"
    TOKEN = "token"
    ANONYMOUS_TOKEN = "anonymous-token"


class Authenticator:
    """Chooses the ``Authorization`` header for registry requests and reacts to 401 challenges."""

    def __init__(self, registry: str, credentials: Callable[[], Credentials | None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = registry
        self._credentials_fn = credentials
        self._credentials: Credentials | None = None
        self._credentials_loaded = False
        self._clock = clock
        self._lock = threading.RLock()
        self._basic = False
        self._bearer: Challenge | None = None
        self._tokens: dict[frozenset[str], _Token] = {}
        self.session: "RegistrySession | None" = None

    def credentials(self) -> Credentials | None:
        """The credentials, looked up on first need (a docker config is only read if the registry asks)."""
        with self._lock:
            if not self._credentials_loaded:
                self._credentials = self._credentials_fn()
                self._credentials_loaded = True
            return self._credentials

    def header(self, scopes: tuple[str, ...], *, reference: str | None = None) -> str | None:
        """The ``Authorization`` value for a request needing ``scopes``; refreshes an expiring token.

        ``reference`` (the image being pulled) is named in the errors of a token request."""
        with self._lock:
            if self._basic:
                creds = self.credentials()
                return basic_header(*creds.basic) if creds and creds.basic else None
            token = self._tokens.get(frozenset(scopes))
            if token is not None and self._clock() < token.expires_at:
                return f"Bearer {token.value}"
            if self._bearer is not None and token is not None:
                # expired: fetch a fresh one before the request instead of collecting a 401 first
                return f"Bearer {self._fetch(self._bearer, scopes, reference=reference).value}"
            return None

    def state(self, scopes: tuple[str, ...]) -> str:
        """How requests for ``scopes`` are being authenticated (see AuthState)."""
        with self._lock:
            if self._basic:
                return AuthState.BASIC
            token = self._tokens.get(frozenset(scopes))
            if token is None:
                return AuthState.NONE
            return AuthState.ANONYMOUS_TOKEN if token.anonymous else AuthState.TOKEN

    def authenticate(self, response: httpx.Response, scopes: tuple[str, ...], sent: str | None, *,
                     reference: str | None = None) -> bool:
        """Update the state from a 401 so that a retry can succeed; False when nothing more can be tried.

        ``sent`` is the header the failed request carried: when another thread already replaced it, the
        retry just uses the new one.
        """
        challenges = parse_www_authenticate(*response.headers.get_list("www-authenticate"))
        with self._lock:
            current = self._current_header(scopes)
            if current is not None and current != sent:
                return True
            bearer = next((c for c in challenges if c.scheme == "bearer" and c.params.get("realm")), None)
            if bearer is not None:
                self._bearer = bearer
                self._basic = False
                wanted = tuple(dict.fromkeys((*scopes, *bearer.scopes)))
                token = self._fetch(bearer, wanted, key=scopes, reference=reference)
                return f"Bearer {token.value}" != sent
            if any(c.scheme == "basic" for c in challenges):
                creds = self.credentials()
                if creds is None or creds.basic is None:
                    return False
                if self._basic:
                    return False  # Basic credentials were sent and refused
                self._basic = True
                return True
            return False

    def _current_header(self, scopes: tuple[str, ...]) -> str | None:
        """The header ``header`` would send now, without refreshing anything."""
        if self._basic:
            creds = self.credentials()
            return basic_header(*creds.basic) if creds and creds.basic else None
        token = self._tokens.get(frozenset(scopes))
        return f"Bearer {token.value}" if token is not None else None

    def _fetch(self, challenge: Challenge, scopes: tuple[str, ...], *, key: tuple[str, ...] | None = None,
               reference: str | None = None) -> _Token:
        """Get a token from the challenge's realm for ``scopes`` and remember it under ``key``."""
        assert self.session is not None, "Authenticator.session is set by RegistrySession"
        creds = self.credentials()
        realm = challenge.params["realm"]
        service = challenge.params.get("service")
        params: list[tuple[str, str]] = [("service", service)] if service else []
        headers: dict[str, str] = {"Accept": "application/json"}
        if creds is not None and creds.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token,
                    "client_id": "ocilens", "scope": " ".join(scopes)}
            if service:
                form["service"] = service
            resp, body = self.session.fetch("POST", realm, headers=headers, data=form, what="token request",
                                            reference=reference, limit=_MAX_TOKEN_BODY, accept=frozenset({401, 403}))
        else:
            params += [("scope", s) for s in scopes]
            if creds is not None and creds.basic:
                headers["Authorization"] = basic_header(*creds.basic)
            resp, body = self.session.fetch("GET", realm, headers=headers, params=params, what="token request",
                                            reference=reference, limit=_MAX_TOKEN_BODY, accept=frozenset({401, 403}))
        subject = f"{reference}: " if reference else ""
        if resp.status_code in (401, 403):
            codes, detail = error_details(body)
            if creds is None:
                note = self.session.credentials_problem
                raise AuthenticationError(
                    f"{subject}{self.registry} needs credentials: its token service {realm} refused an anonymous "
                    f"token (HTTP {resp.status_code}{': ' + detail if detail else ''})", reference=reference,
                    url=str(resp.request.url), status=resp.status_code, codes=codes,
                    hint="log in (docker login) or pass auth=(user, password)" + (f"; {note}" if note else ""))
            user = f" for user {creds.username!r}" if creds.username else ""
            raise AuthenticationError(
                f"{subject}the token service {realm} of {self.registry} rejected the credentials{user} from "
                f"{creds.origin} (HTTP {resp.status_code}{': ' + detail if detail else ''})", reference=reference,
                url=str(resp.request.url), status=resp.status_code, codes=codes, hint=creds.fix(self.registry))
        if resp.status_code != 200:
            raise registry_error(resp, body, what="token request", reference=reference, registry=self.registry)
        try:
            obj = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AuthenticationError(f"{subject}the token service {realm} of {self.registry} did not answer with "
                                      f"JSON ({one_line(body.decode('utf-8', 'replace'), 80)})", reference=reference,
                                      url=str(resp.request.url),
                                      hint="check the registry's token realm: it names a URL that is not a "
                                           "token service") from exc
        value = (obj.get("token") or obj.get("access_token")) if isinstance(obj, dict) else None
        if not value or not isinstance(value, str):
            raise AuthenticationError(f"{subject}the token service {realm} of {self.registry} answered without a "
                                      "token", reference=reference, url=str(resp.request.url),
                                      hint="check the registry's token realm: it names a URL that is not a "
                                           "token service")
        try:
            expires_in = int(obj.get("expires_in") or DEFAULT_EXPIRES_IN)
        except (TypeError, ValueError):
            expires_in = DEFAULT_EXPIRES_IN
        margin = min(10.0, expires_in / 10)
        token = _Token(value, self._clock() + expires_in - margin, anonymous=creds is None)
        self._tokens[frozenset(key if key is not None else scopes)] = token
        return token

