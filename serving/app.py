"""The Starlette app around :class:`.handler.TrackHandler`: routes, bearer token, body limit, worker threads, log.

``GET /health`` answers 200 (the app exists only once its model is loaded); ``POST /`` takes CVAT's tracker JSON.
The body is read in chunks and refused with 413 once it passes the limit (nothing over the limit is kept; the rest
is read and discarded up to twice the limit so the client sees the answer); the handler runs in at most `workers`
threads at a time (:class:`anyio.CapacityLimiter`), so the event loop keeps accepting while the model works.
Every request logs one line: method, path, status, milliseconds, body bytes; never the image or the states.
Every error is JSON ``{"error": "<one line>"}``.

Starlette and uvicorn are the ``serve`` extra (``pip install 'siammask[serve]'``).
"""
from __future__ import annotations

import hmac
import logging
import time
from typing import Any, Optional

from ..utils.errors import SiamMaskError
from .handler import TrackHandler

LOG = logging.getLogger("siammask.serve")
INSTALL_HINT = "pip install 'siammask[serve]' (or: pip install starlette uvicorn)"


class MissingExtraError(SiamMaskError):
    """Starlette or uvicorn is not installed."""


def require_serve_extra() -> None:
    """Raise :class:`MissingExtraError` (one line saying what to install) unless starlette and uvicorn import."""
    missing = []
    for name in ("starlette", "uvicorn", "anyio"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingExtraError(f"the annotation server needs {', '.join(missing)}: {INSTALL_HINT}")


class RequestLog:
    """ASGI middleware: one log line per HTTP request (method, path, status, ms, request body bytes)."""

    def __init__(self, app: Any, logger: logging.Logger = LOG) -> None:
        self.app = app
        self.logger = logger

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]
        received = [0]

        async def counting_receive() -> dict:
            message = await receive()
            if message.get("type") == "http.request":
                received[0] += len(message.get("body", b""))
            return message

        async def status_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, counting_receive, status_send)
        finally:
            ms = 1000.0 * (time.perf_counter() - start)
            self.logger.info("%s %s %d %.1f ms %d bytes", scope.get("method", "?"), scope.get("path", "?"),
                             status[0], ms, received[0])


def create_app(handler: TrackHandler, token: Optional[str] = None, workers: int = 2) -> Any:
    """The ASGI app serving `handler`.

    Args:
        handler: the loaded model's handler (its limits give the body cap).
        token: when set, ``POST /`` needs ``Authorization: Bearer <token>`` (401 otherwise); ``/health`` stays open.
        workers: requests handled at the same time (threads around the one model); more wait their turn.
    """
    require_serve_extra()
    import anyio
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    limiter = anyio.CapacityLimiter(max(1, int(workers)))
    max_body = handler.limits.max_body_bytes
    expected = f"Bearer {token}".encode("utf-8") if token else None

    def error(status: int, message: str, headers: Optional[dict[str, str]] = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "fingerprint": handler.spec.fingerprint,
                             "template": list(handler.spec.zf_shape)})

    async def track(request: Request) -> JSONResponse:
        if expected is not None:
            given = request.headers.get("authorization", "").encode("utf-8", "replace")
            if not hmac.compare_digest(given, expected):
                return error(401, "missing or wrong 'Authorization: Bearer <token>' header",
                             {"WWW-Authenticate": "Bearer"})
        length = request.headers.get("content-length")
        if length is not None and not length.isdigit():
            return error(400, "Content-Length is not a number")
        told = f"{length} bytes" if length is not None else "over the limit"
        too_large = error(413, f"request body is {told}, the limit is {max_body} bytes", {"Connection": "close"})
        if length is not None and int(length) > 2 * max_body:
            return too_large
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > 2 * max_body:
                return too_large
            if size <= max_body:
                chunks.append(chunk)
        # Over the limit but within twice it: read to the end (kept nothing), so that an ordinary client that sends
        # the whole body before reading gets the 413 rather than a reset.
        if size > max_body:
            return too_large
        status, payload = await anyio.to_thread.run_sync(handler.handle_body, b"".join(chunks), limiter=limiter)
        return JSONResponse(payload, status_code=status)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        code = getattr(exc, "status_code", 500)
        detail = getattr(exc, "detail", "") or "error"
        return error(code, f"{request.method} {request.url.path}: {detail}")

    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        LOG.error("internal error on %s %s: %r", request.method, request.url.path, exc)
        return error(500, "internal error (see the server log)")

    app = Starlette(routes=[Route("/health", health, methods=["GET"]), Route("/", track, methods=["POST"])],
                    exception_handlers={HTTPException: http_error, Exception: server_error})
    return RequestLog(app)
