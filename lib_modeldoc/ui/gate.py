"""The standalone server's front door: an ASGI middleware in front of gradio's app.

Why a gate rather than a newer gradio: ``serve`` ships gradio 3.41.2 (AUTOMATIC1111 1.10's
version, the one the tab is built and tested against), and every gradio release the tab
supports has published holes: 3.41 answers ``Access-Control-Allow-Origin: *``, never checks
``Host`` (CVE-2024-1727), serves ``/file=`` under the working directory, and its websocket queue
takes any ``access-token`` cookie as a login; 4.40 (Forge's) still has the CVE-2024-47084/47166/
47167/47168/47867/47868/47870 family, fixed only in 5.x, which the tab does not run on. So the
standalone server relies on no gradio check and closes it all here, whatever gradio is installed:

* **Host:** only names of this machine (loopback names, the address it listens on; on a
  wildcard address also this machine's names and any IP literal). A foreign name is DNS
  rebinding: 403.
* **Origin:** a browser request that carries ``Origin`` (every cross-origin fetch, form POST and
  websocket does) must come from this very origin; ``null`` and other sites get 403, so a page
  elsewhere can neither start a job nor read a result.
* **Paths:** gradio's file, proxy and upload routes are closed (the tab has no file component):
  ``/file=`` would serve files under the working directory.
* **Websocket login:** with ``--auth``, the queue's websocket needs a token gradio really issued.

No gradio import here: the gate is plain ASGI, tested on its own and in front of the real app.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["Gate", "HostPolicy", "is_loopback", "BLOCKED_PATHS"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# gradio's routes that read or fetch files and URLs (3.x and 4.x spellings). The tab needs none.
BLOCKED_PATHS = ("/file=", "/file/", "/proxy=", "/upload", "/component_server", "/custom_component", "/stream/",
                 "/gradio_api/file=", "/gradio_api/upload", "/gradio_api/proxy=")
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_TOKEN_COOKIES = ("access-token", "access-token-unsecure")


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps the server to this machine."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class HostPolicy:
    """Which ``Host`` header names the server answers to."""

    names: frozenset[str]
    any_ip: bool = False  # an IP literal cannot be rebound by DNS

    @classmethod
    def for_bind(cls, host: str, extra: Iterable[str] = ()) -> HostPolicy:
        """The names a server listening on ``host`` is reached by (plus ``extra`` names the user allows)."""
        bind = host.strip().strip("[]").lower()
        allowed = LOOPBACK_NAMES | {n.strip().strip("[]").lower() for n in extra if n.strip()}
        if bind in ("0.0.0.0", "::", ""):
            short = socket.gethostname().lower()
            names = {short, f"{short}.local", socket.getfqdn().lower()}
            return cls(allowed | {n for n in names if n}, any_ip=True)
        return cls(allowed | {bind})

    def allows(self, host_header: str | None) -> bool:
        name = _host_name(host_header)
        if not name:
            return False
        return name in self.names or (self.any_ip and _is_ip(name))


def _host_name(value: str | None) -> str:
    """``example.org:7870`` -> ``example.org``; ``[::1]:7870`` -> ``::1``."""
    if not value:
        return ""
    try:
        parts = urlsplit(f"//{value.strip()}")
        return (parts.hostname or "").lower()
    except ValueError:
        return ""


def _headers(scope: Scope) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in scope.get("headers") or ():
        name = key.decode("latin-1").lower()
        if name not in found:  # the first of repeated headers; a second Host is not looked at
            found[name] = value.decode("latin-1")
    return found


def _cookies(header: str) -> dict[str, str]:
    jar = {}
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key:
            jar[key] = value
    return jar


class Gate:
    """ASGI middleware: refuses what the standalone server must never answer (see the module doc).

    Args:
        app: the wrapped ASGI app (gradio's).
        hosts: the accepted ``Host`` names.
        auth: whether a login is required (then a websocket needs a token the app issued; the app
            keeps them in ``app.tokens``, as gradio does).
        blocked: path prefixes refused with 403.
    """

    def __init__(self, app: ASGIApp, *, hosts: HostPolicy, auth: bool = False,
                 blocked: Iterable[str] = BLOCKED_PATHS) -> None:
        self.app = app
        self.hosts = hosts
        self.auth = auth
        self.blocked = tuple(blocked)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        reason = self.refusal(scope)
        if reason is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            await _forbidden(send, reason)

    def refusal(self, scope: Scope) -> str | None:
        """Why the request is refused (one line), or ``None`` to let it through."""
        headers = _headers(scope)
        host = headers.get("host")
        if not self.hosts.allows(host):
            return "this server answers to its own host names only"
        origin = headers.get("origin")
        if origin is not None and not _same_origin(origin, host or "", scope):
            return "requests from other sites are refused"
        if headers.get("sec-fetch-site", "").lower() in ("cross-site", "same-site"):
            return "requests from other sites are refused"
        path = unquote(scope.get("path") or "")
        root = scope.get("root_path") or ""
        if root and path.startswith(root):
            path = path[len(root):] or "/"
        if path.lower().startswith(self.blocked):
            return "not served"
        if self.auth and scope["type"] == "websocket" and not self._logged_in(scope, headers):
            return "log in first"
        return None

    @staticmethod
    def _logged_in(scope: Scope, headers: dict[str, str]) -> bool:
        tokens = getattr(scope.get("app"), "tokens", None) or {}
        jar = _cookies(headers.get("cookie", ""))
        return any(jar.get(name) and jar[name] in tokens for name in _TOKEN_COOKIES)


def _same_origin(origin: str, host: str, scope: Scope) -> bool:
    if origin.strip().lower() == "null":
        return False
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return False
    if parts.scheme not in ("http", "https"):  # behind a TLS proxy the page is https, the scope http
        return False
    return bool(parts.netloc) and parts.netloc.lower() == host.strip().lower()


async def _forbidden(send: Send, reason: str) -> None:
    body = f"403 Forbidden: {reason}\n".encode()
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
