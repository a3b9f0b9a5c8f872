"""Request ids: every API request has one, in its log lines and in its answer.

A caller's ``X-Request-ID`` is kept when it is sane (1 to 128 letters, digits, ``.-_:``), so a
request can be followed from the care-management system into our logs; otherwise one is made.
The id is set in :data:`fhir_bridge.logs.REQUEST_ID` for the request's duration and echoed in
the answer's ``X-Request-ID``.
"""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_bridge.logs import REQUEST_ID

HEADER = "X-Request-ID"
_SANE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def request_id_of(value: str | None) -> str:
    """The caller's id when sane, else a new one."""
    if value is not None and _SANE.match(value):
        return value
    return uuid.uuid4().hex


class RequestIds:
    """ASGI middleware: set the request id, echo it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope.get("headers", []):
            if name.lower() == b"x-request-id":
                given = value.decode("latin-1")
                break
        request_id = request_id_of(given)
        scope.setdefault("state", {})["request_id"] = request_id
        token = REQUEST_ID.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", request_id.encode("ascii")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
