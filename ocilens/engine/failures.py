"""Typed errors for what goes wrong between ocilens and an engine, each naming the endpoint with a hint."""

from __future__ import annotations

import errno
import grp
import json
import os
import pwd
import stat

from ..errors import (EngineAPIError, EngineError, EngineExportInterrupted, EngineImageNotFound, EngineNotRunning,
                      EnginePermissionDenied)
from .endpoint import Endpoint

__all__ = ["connect_failure", "api_failure", "broken_answer", "export_interrupted", "api_message",
           "in_stream_error"]

_MAX_DETAIL = 300


def _os_error(exc: BaseException | None) -> OSError | None:
    """The OSError under an httpx/httpcore error (its cause chain), if there is one."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno is not None:
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _not_running_hint(ep: Endpoint) -> str:
    """How to start the engine, or point ocilens at another one."""
    if ep.engine == "docker":
        start = "is the Docker daemon running? (`systemctl start docker`; rootless: `systemctl --user start docker`"
        var = "DOCKER_HOST"
    else:
        start = ("is the Podman API service running? (`systemctl start podman.socket`; rootless: "
                 "`systemctl --user start podman.socket`; or `podman system service --time=0 &`")
        var = "CONTAINER_HOST"
    where = f"; the address came from {ep.origin}" if ep.origin and ep.origin != "default socket" else ""
    return f"{start}; or set {var} to the engine's address{where})"


def _permission_hint(ep: Endpoint, group: str | None) -> str:
    """How to get access to the socket: the group, sudo, or the rootless engine of one's own."""
    if ep.engine == "docker":
        grp_name = group if group and group != "root" else "docker"
        return (f"add yourself to the {grp_name} group: `sudo usermod -aG {grp_name} $USER`, then log in again "
                f"(or `newgrp {grp_name}`); or run with sudo; rootless Docker listens on "
                "DOCKER_HOST=unix://$XDG_RUNTIME_DIR/docker.sock")
    return ("run as root (sudo) for the root Podman's socket, or use your rootless Podman: "
            "`systemctl --user start podman.socket` and CONTAINER_HOST=unix://$XDG_RUNTIME_DIR/podman/podman.sock")


def _owner(st: os.stat_result) -> tuple[str, str]:
    """The socket's owner and group as names (numbers when the databases do not know them)."""
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return user, group


def _permission_denied(ep: Endpoint, reference: str | None) -> EngineError:
    """EnginePermissionDenied, saying whose socket it is and who we are."""
    sock = ep.socket or ""
    try:
        st = os.stat(sock)
    except PermissionError:
        return EnginePermissionDenied(
            f"cannot reach the {ep.engine} socket {sock}: permission denied on a directory of its path "
            f"(you are uid {os.geteuid()})", reference=reference, engine=ep.engine, endpoint=ep.describe(),
            hint=_permission_hint(ep, None))
    except OSError:
        st = None
    detail, group = "", None
    if st is not None:
        user, group = _owner(st)
        detail = f" (owned by {user}:{group}, mode {stat.S_IMODE(st.st_mode):04o}; you are uid {os.geteuid()}"
        detail += ", not in its group)" if st.st_gid not in os.getgroups() and st.st_gid != os.getegid() else ")"
    return EnginePermissionDenied(f"permission denied on the {ep.engine} socket {sock}{detail}",
                                  reference=reference, engine=ep.engine, endpoint=ep.describe(),
                                  hint=_permission_hint(ep, group))


def connect_failure(ep: Endpoint, exc: BaseException, reference: str | None = None) -> EngineError:
    """The typed error for a connection that could not be made: not running, or no permission."""
    oserr = _os_error(exc)
    code = oserr.errno if oserr is not None else None
    if code in (errno.EACCES, errno.EPERM):
        return _permission_denied(ep, reference)
    kwargs = dict(reference=reference, engine=ep.engine, endpoint=ep.describe(), hint=_not_running_hint(ep))
    if ep.socket is None:
        reason = oserr.strerror if oserr is not None and oserr.strerror else (str(exc) or type(exc).__name__)
        return EngineNotRunning(f"cannot connect to the {ep.engine} engine at {ep.describe()}: {reason}", **kwargs)
    sock = ep.socket
    try:
        st = os.stat(sock)
    except PermissionError:
        return _permission_denied(ep, reference)
    except OSError:
        return EngineNotRunning(f"the {ep.engine} engine is not running: no socket at {sock}", **kwargs)
    if not stat.S_ISSOCK(st.st_mode):
        return EngineNotRunning(f"{sock} is not a socket, so no {ep.engine} engine listens there", **kwargs)
    reason = "connection refused" if code == errno.ECONNREFUSED else (str(exc) or type(exc).__name__)
    return EngineNotRunning(f"nothing accepts connections on the {ep.engine} socket {sock} ({reason}): the engine "
                            "is not running, or it died and left its socket behind", **kwargs)


def api_message(body: bytes) -> str | None:
    """The engine's ``message`` field of an error body (docker and podman both send it), else its text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        text = data["message"]
    text = " ".join(text.split())
    if not text:
        return None
    return text if len(text) <= _MAX_DETAIL else text[:_MAX_DETAIL - 3] + "..."


def api_failure(ep: Endpoint, method: str, path: str, status: int, body: bytes, *, reference: str | None = None,
                image: str | None = None, hint: str | None = None) -> EngineError:
    """The typed error for an answer that is not a success: 404 on an image is EngineImageNotFound."""
    msg = api_message(body)
    cli = ep.engine
    if status == 404 and image is not None:
        return EngineImageNotFound(
            f"the {cli} engine ({ep.describe()}) has no image {image!r}" + (f": {msg}" if msg else ""),
            reference=reference, engine=ep.engine, endpoint=ep.describe(),
            hint=f"`{cli} images` lists the images it has; `{cli} pull {image}` fetches one from its registry")
    hint = hint or f"the {cli} engine's log may say more"
    if image is not None and status in (400, 500) and msg and "reference format" in msg:
        hint = f"check the image name: `{cli} images` lists them (names are lowercase)"
    return EngineAPIError(f"the {cli} engine ({ep.describe()}) answered {method} {path} with HTTP {status}"
                          + (f": {msg}" if msg else ""), reference=reference, engine=ep.engine,
                          endpoint=ep.describe(), status=status, api_message=msg, hint=hint)


def broken_answer(ep: Endpoint, method: str, path: str, exc: BaseException,
                  reference: str | None = None) -> EngineError:
    """The typed error for a request whose answer broke off or never came (the engine died or hung)."""
    return EngineAPIError(f"the {ep.engine} engine ({ep.describe()}) did not answer {method} {path}: "
                          f"{str(exc) or type(exc).__name__}", reference=reference, engine=ep.engine,
                          endpoint=ep.describe(),
                          hint=f"the engine may have died or be restarting: check it (`systemctl status "
                               f"{'docker' if ep.engine == 'docker' else 'podman.socket'}`) and try again")


def export_interrupted(ep: Endpoint, image: str, received: int, why: str,
                       reference: str | None = None) -> EngineExportInterrupted:
    """The typed error for an export stream that ended before the archive did."""
    unit = "byte" if received == 1 else "bytes"
    return EngineExportInterrupted(
        f"the export of {image!r} from the {ep.engine} engine ({ep.describe()}) broke off after {received:,} "
        f"{unit}: {why}", reference=reference, engine=ep.engine, endpoint=ep.describe(), received=received,
        hint=f"the engine may have died or restarted: check it (`{ep.engine} info`, its service's log) "
             "and try again")


def in_stream_error(tail: bytes) -> str | None:
    """The message of an error the engine wrote into the stream after the export began (docker appends
    ``{"errorDetail": {"message": ...}, "error": ...}`` when it fails midway), if the tail holds one."""
    start = tail.rfind(b'{"errorDetail"')
    if start < 0:
        return None
    try:
        data = json.loads(tail[start:].decode("utf-8", "replace"))
    except ValueError:
        return None
    detail = data.get("errorDetail") if isinstance(data, dict) else None
    msg = detail.get("message") if isinstance(detail, dict) else None
    if not isinstance(msg, str):
        msg = data.get("error") if isinstance(data, dict) and isinstance(data.get("error"), str) else None
    return msg
