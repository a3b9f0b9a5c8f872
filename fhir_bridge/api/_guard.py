"""The first thing every request meets: a pure ASGI middleware between the server and the app.

In this order, before any route runs:
1. a ``Content-Length`` above ``max_body_bytes`` is answered 413 without reading the body;
2. a request that may carry a body to an API route (``/v1/...``; POST, PUT, PATCH, DELETE) needs
   a known API key (``Authorization: Bearer``) before one byte of the body is read: 401
   otherwise (the route still checks the key's scope);
3. the body, when the app reads it, is counted as it streams in (chunked bodies too): past the
   limit, 413; a JSON body (no content type, ``application/json`` or ``+json``) must be UTF-8,
   hold numbers only where JSON has them (no ``NaN``/``Infinity``), nest at most
   ``MAX_JSON_DEPTH`` levels and hold no lone surrogate: 422 naming the field otherwise.

Whatever the route did with a refused body is dropped and the guard's own answer sent. An
exception no handler turned into an answer becomes a 500 whose log line carries the method,
the route, the error's type and where it was raised: never its message, which may quote the
body (a pydantic error quotes its input), and never the body itself.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_bridge.documents import parse_json
from fhir_bridge.errors import InputError, MappingError, StoreUnavailable
from fhir_bridge.store import Grant

log = logging.getLogger("fhir_bridge.api")

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KEYED_PREFIX = "/v1/"
RETRY_AFTER_SECONDS = 5  # when the database is unavailable


class _Refused(Exception):  # noqa: N818 - a control-flow signal, not an error of the tree
    """Raised into the app from ``receive``: the body was refused; the guard answers."""

    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        self.status = status
        self.payload = payload
        super().__init__(status)


def _is_json(headers: Headers) -> bool:
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media in ("", "application/json") or media.endswith("+json")


async def _answer(
    send: Send, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    body = json.dumps(payload).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _too_large(limit: int) -> _Refused:
    return _Refused(
        413,
        {"detail": f"the body is larger than {limit} bytes (max_body_bytes)", "limit": limit},
    )


def _checked(body: bytes) -> None:
    """Raise _Refused (422) when a JSON body is not UTF-8 JSON the app can take."""
    try:
        parse_json(body, "body")
    except MappingError as exc:
        problems = [{"path": p.path, "reason": p.reason} for p in exc.problems]
        raise _Refused(422, {"detail": "unreadable body", "problems": problems}) from None
    except InputError as exc:
        raise _Refused(422, {"detail": str(exc)}) from None


def raised_at(exc: BaseException) -> str:
    """Where an exception was raised (file:line of the innermost frame), for the log."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown"
    last = frames[-1]
    return f"{last.filename.rsplit('/', 1)[-1]}:{last.lineno}"


class InputGuard:
    """See the module docstring. ``grant_of`` gives an API key's grant (any scope; None for an
    unknown, revoked or expired key); the grant found is left in the request's state
    (``request.state.grant``) for the route's scope check, so the key is looked up once."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: Callable[[], int],
        grant_of: Callable[[str], Grant | None],
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.grant_of = grant_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit = self.max_body()
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                await _answer(send, 400, {"detail": "Content-Length is not a number"})
                return
            if int(length) > limit:
                refusal = _too_large(limit)
                await _answer(send, refusal.status, refusal.payload, {"Connection": "close"})
                return
        if scope["method"] in BODY_METHODS and scope["path"].startswith(KEYED_PREFIX):
            try:
                grant = await self._grant(headers.get("authorization"))
            except StoreUnavailable as exc:
                await _answer(
                    send,
                    503,
                    {"detail": "the database is unavailable: try again", "error": exc.error_type},
                    {"Retry-After": str(RETRY_AFTER_SECONDS)},
                )
                return
            if grant is None:
                await _answer(
                    send,
                    401,
                    {"detail": "an API key is required (Authorization: Bearer <key>)"},
                    {"WWW-Authenticate": "Bearer"},
                )
                return
            scope.setdefault("state", {})["grant"] = grant
        await self._guarded(scope, receive, send, limit, _is_json(headers))

    async def _grant(self, authorization: str | None) -> Grant | None:
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        key = authorization[7:].strip()
        return await run_in_threadpool(self.grant_of, key) if key else None

    async def _guarded(
        self, scope: Scope, receive: Receive, send: Send, limit: int, is_json: bool
    ) -> None:
        refused: list[_Refused] = []
        started = False
        read = False

        async def guarded_receive() -> Message:
            nonlocal read
            if read or refused:
                return await receive()
            read = True
            chunks: list[bytes] = []
            size = 0
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return message  # the client went away
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    refused.append(_too_large(limit))
                    raise refused[-1]
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            if is_json and body.strip():
                try:
                    _checked(body)
                except _Refused as exc:
                    refused.append(exc)
                    raise
            return {"type": "http.request", "body": body, "more_body": False}

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the route's answer to a refused body is replaced by the guard's
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception as exc:
            if not refused:
                self._log_failure(scope, exc)
                if not started:
                    await _answer(send, 500, {"detail": "internal error", "error": "internal"})
                return
        if refused and not started:
            headers = {"Connection": "close"} if refused[0].status == 413 else None
            await _answer(send, refused[0].status, refused[0].payload, headers)

    @staticmethod
    def _log_failure(scope: Scope, exc: Exception) -> None:
        route = scope.get("route")
        path = getattr(route, "path", None) or "(no route)"
        log.error(
            "request failed",
            extra={
                "method": scope.get("method"),
                "route": path,
                "error": type(exc).__name__,
                "raised_at": raised_at(exc),
            },
        )
