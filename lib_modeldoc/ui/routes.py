"""The HTTP routes the WebUI adapter adds (``/modeldoc/*``), closed the way the WebUI's own API is.

* **Auth:** with ``--api-auth "u1:p1,u2:p2"`` AUTOMATIC1111 and Forge guard every ``/sdapi/v1/*``
  route with HTTP Basic credentials (``modules/api/api.py``, ``Api.auth``), but routes an extension
  adds to the app are not covered. Every route here depends on the same check.
* **CSRF:** a browser sends ``Origin`` (and ``Sec-Fetch-Site``) with a POST; a POST from a page of
  another site is refused unless the user allowed that origin (``--cors-allow-origins[-regex]``).
  Programs that send neither header (curl, scripts) are not browsers and may post.
* **Paths:** a file the WebUI lists is inspectable, wherever a symbolic link takes it; any other
  path must resolve (links followed) inside a model folder. A name is looked up in the WebUI's
  lists only, never taken as a path.
* **Errors:** every refusal is an HTTP 4xx whose ``detail`` is one line; nothing raises through.

Needs FastAPI (the WebUI's, a dependency of gradio); gradio itself is not imported here.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable
from secrets import compare_digest
from typing import Any, Protocol
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from starlette.concurrency import run_in_threadpool

from ..errors import ModelDocError
from ..io.paths import native_path
from .confinement import Confinement
from .host import Choice, LiveClip

__all__ = ["RouteHost", "Confinement", "confinement", "RouteError", "parse_credentials", "add_routes"]

logger = logging.getLogger("modeldoc")


class RouteError(Exception):
    """A refused request: an HTTP status and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class RouteHost(Protocol):
    """What the routes need from the WebUI adapter."""

    def checkpoints(self) -> list[Choice]: ...

    def vaes(self) -> list[Choice]: ...

    def loras(self) -> list[Choice]: ...

    def loaded_checkpoint(self) -> str | None: ...

    def find_listed(self, name: str) -> str | None:
        """The file of a list entry (label, title, name, ``name [hash]``), or ``None``."""

    def model_folders(self) -> list[str]:
        """The folders a path may lie in (links resolved against them)."""

    def live_clip(self, *, fix: bool) -> LiveClip: ...


def parse_credentials(api_auth: str | None) -> dict[str, str]:
    """``--api-auth`` as the WebUI reads it: ``"user:password"`` pairs separated by commas."""
    pairs: dict[str, str] = {}
    for item in (api_auth or "").split(","):
        if item.strip():
            user, _, password = item.partition(":")
            pairs[user] = password
    return pairs


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "bad request"


def confinement(host: RouteHost) -> Confinement:
    """What a request may name: the files the WebUI lists (and the loaded one), and its model folders."""
    listed = tuple(c.path for c in (*host.checkpoints(), *host.vaes(), *host.loras()))
    loaded = host.loaded_checkpoint()
    return Confinement(listed + ((loaded,) if loaded else ()), tuple(f for f in host.model_folders() if f))


def _check_text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RouteError(422, f"{field} must be a string, not {type(value).__name__}")
    if "\0" in value:
        raise RouteError(400, f"{field} contains a NUL byte")
    return value.strip() or None


def find_target(host: RouteHost, path: Any = None, name: Any = None) -> str:
    """The file a request means (``path`` or ``name``; neither: the loaded model), or :class:`RouteError`."""
    path, name = _check_text(path, "path"), _check_text(name, "name")
    if path and name:
        raise RouteError(400, "give path or name, not both")
    if name:
        found = host.find_listed(name)
        if not found:
            raise RouteError(404, f"no model named {name!r} in the WebUI's lists")
        return found
    if not path:
        loaded = host.loaded_checkpoint()
        if not loaded:
            raise RouteError(404, "no model is loaded; give ?path= or ?name=")
        return loaded
    try:
        target = os.path.abspath(path)
        allowed = confinement(host).allows(target)
    except (OSError, ValueError) as exc:
        raise RouteError(400, f"unusable path: {_one_line(exc)}") from None
    if not allowed:
        raise RouteError(403, "only files the WebUI lists or files in its model folders can be inspected")
    if not os.path.exists(native_path(target)):  # Windows: a long path in its \\?\ form
        raise RouteError(404, f"{path}: no such file")
    return target


class OriginCheck:
    """Refuses a browser's POST that comes from a page of another site."""

    def __init__(self, allowed: str | None = None, allowed_regex: str | None = None) -> None:
        self.allowed = {o.strip().rstrip("/").lower() for o in (allowed or "").split(",") if o.strip()}
        self.regex = re.compile(allowed_regex) if allowed_regex else None

    def refuses(self, origin: str | None, fetch_site: str | None, host: str | None) -> bool:
        if origin is not None and self._allowed(origin):
            return False
        if (fetch_site or "").lower() in ("cross-site", "same-site"):
            return True
        if origin is None:
            return False  # not a browser (browsers send Origin with every POST)
        parts = urlsplit(origin)
        return not parts.netloc or parts.netloc.lower() != (host or "").lower()

    def _allowed(self, origin: str) -> bool:
        origin = origin.rstrip("/").lower()
        return "*" in self.allowed or origin in self.allowed or bool(self.regex and self.regex.fullmatch(origin))


def add_routes(app: Any, host: RouteHost, *, api_auth: str | None = None, cors_allow_origins: str | None = None,
               cors_allow_origins_regex: str | None = None) -> None:
    """Add ``GET|POST /modeldoc/inspect``, ``GET /modeldoc/models`` and ``POST /modeldoc/live-clip`` to ``app``."""
    credentials = parse_credentials(api_auth)
    origins = OriginCheck(cors_allow_origins, cors_allow_origins_regex)

    def check_credentials(given: HTTPBasicCredentials = Depends(HTTPBasic())) -> None:
        expected = credentials.get(given.username)
        if expected is None or not compare_digest(given.password.encode(), expected.encode()):
            raise HTTPException(401, "Incorrect username or password", headers={"WWW-Authenticate": "Basic"})

    def same_site(request: Request) -> None:
        forwarded = request.headers.get("x-forwarded-host")
        if origins.refuses(request.headers.get("origin"), request.headers.get("sec-fetch-site"),
                           forwarded.split(",")[0].strip() if forwarded else request.headers.get("host")):
            raise HTTPException(403, "refused: a request from a page of another site (the WebUI's CORS options can allow a site)")

    guards = [Depends(check_credentials)] if credentials else []
    post_guards = [*guards, Depends(same_site)]

    def failed(exc: RouteError) -> JSONResponse:
        return JSONResponse({"detail": _one_line(str(exc))}, status_code=exc.status)

    def inspect_target(path: Any, name: Any) -> Any:
        from ..checks.diagnose import inspect_model

        try:
            target = find_target(host, path, name)
            try:
                return inspect_model(target).to_dict()
            except ModelDocError as exc:
                raise RouteError(400, str(exc)) from None
            except OSError as exc:
                raise RouteError(400, f"{target}: {exc.strerror or exc}") from None
            except Exception as exc:  # a bug: one line in the answer and the log (the traceback at debug level)
                logger.warning("modeldoc: inspecting %s failed: %s: %s", target, type(exc).__name__, exc,
                               exc_info=logger.isEnabledFor(logging.DEBUG))
                raise RouteError(500, f"internal error ({type(exc).__name__}: {exc})") from None
        except RouteError as exc:
            return failed(exc)

    def inspect(path: str | None = None, name: str | None = None) -> Any:
        """Inspect a model the WebUI lists (``name``), a file in its model folders (``path``), or the loaded one."""
        return inspect_target(path, name)

    async def inspect_post(request: Request) -> Any:
        """``inspect`` with a JSON body ``{"path": …}`` or ``{"name": …}``."""
        try:
            body = await request.json()
        except ValueError:
            return failed(RouteError(400, "the body is not JSON"))
        if not isinstance(body, dict):
            return failed(RouteError(422, 'the body must be a JSON object: {"path": …} or {"name": …}'))
        return await run_in_threadpool(inspect_target, body.get("path"), body.get("name"))

    def models() -> dict[str, Any]:
        """The model lists the tab shows, with their files."""
        return {
            "loaded": host.loaded_checkpoint(),
            "checkpoints": [{"title": c.label, "path": c.path} for c in host.checkpoints()],
            "vae": [{"title": c.label, "path": c.path} for c in host.vaes()],
            "lora": [{"title": c.label, "path": c.path} for c in host.loras()],
        }

    def live_clip(request: Request) -> Any:
        """The loaded model's CLIP position_ids in memory; ``?fix=true`` resets them."""
        fix = _flag(request.query_params.get("fix"))
        if fix is None:
            return failed(RouteError(422, "fix must be true or false"))
        result = host.live_clip(fix=fix)
        return {"supported": result.supported, "message": result.message,
                "wrong": {k: list(v) for k, v in result.wrong.items()}, "fixed": result.fixed}

    app.add_api_route("/modeldoc/inspect", inspect, methods=["GET"], dependencies=guards)
    app.add_api_route("/modeldoc/inspect", inspect_post, methods=["POST"], dependencies=post_guards)
    app.add_api_route("/modeldoc/models", models, methods=["GET"], dependencies=guards)
    app.add_api_route("/modeldoc/live-clip", live_clip, methods=["POST"], dependencies=post_guards)


def _flag(value: str | None) -> bool | None:
    if value is None:
        return False
    return {"true": True, "1": True, "yes": True, "on": True,
            "false": False, "0": False, "no": False, "off": False, "": False}.get(value.strip().lower())


def listed_file(name: str, lists: Iterable[Choice], closest: Callable[[str], str | None] | None = None) -> str | None:
    """The file of the list entry ``name`` names: a label exactly, else ``closest`` (the WebUI's own lookup)."""
    text = name.strip()
    lists = list(lists)
    for choice in lists:
        if choice.label == text:
            return choice.path
    for choice in lists:  # "VAE: name" / "LoRA: name" also by the bare name the WebUI lists them under
        kind, sep, bare = choice.label.partition(": ")
        if sep and kind in ("VAE", "LoRA") and bare == text:
            return choice.path
    return closest(text) if closest else None
