"""The API's part of the audit trail: every write that succeeded, by whom, from where.

One ASGI middleware sees every request; a write (any method but GET, HEAD and OPTIONS)
answered below 400 by an authenticated caller is recorded once it is answered: the actor the
authentication left in ``request.state.actor`` (``apikey:<name>``, ``dashboard:<name>``), or
``webhook:<connection>`` for a notification its secret let in; the action is the method and
the route's template (``PUT /v1/{collection}/{record_id}``), the record (its kind: ``goal``
for ``goals``) and connection come from the path's parameters, the source is the client
address. Nothing of the body is kept. A refused request (401, 403, 404, 422 ...) changed
nothing and is not recorded.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_bridge.store import AuditEvent, Store

from .routes.records import COLLECTIONS

log = logging.getLogger("fhir_bridge.api")

_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_RECORD_PARAMS = ("record_id", "patient_id", "conflict_id", "entry_id", "resource_id")


def event_of(scope: Scope, status: int, now: datetime) -> AuditEvent | None:
    """The audit event of an answered request; None when it is not a write to record."""
    if scope.get("method", "GET") in _READS or status >= 400:
        return None
    state: dict[str, Any] = scope.get("state", {})
    params: dict[str, Any] = scope.get("path_params", {})
    route = scope.get("route")
    template = str(getattr(route, "path", None) or scope.get("path", ""))
    actor = state.get("actor")
    if actor is None and template.startswith("/fhir/notify") and "connection" in params:
        actor = f"webhook:{params['connection']}"
    if actor is None:  # an unauthenticated answer (a redirect to sign in) changed nothing
        return None
    record_param = next((p for p in _RECORD_PARAMS if p in params), None)
    collection = params.get("collection")
    kind = COLLECTIONS.get(str(collection), collection) or params.get("resource_type")
    if kind is None and record_param == "patient_id":
        kind = "patient"
    client = scope.get("client")
    detail: dict[str, Any] = {"status": status}
    if state.get("request_id"):
        detail["request_id"] = state["request_id"]
    return AuditEvent(
        actor=str(actor),
        action=f"{scope['method']} {template}",
        at=now,
        kind=None if kind is None or record_param is None else str(kind),
        record_id=None if record_param is None else str(params[record_param]),
        connection=None if "connection" not in params else str(params["connection"]),
        source=None if not client else str(client[0]),
        detail=detail,
    )


class AuditWrites:
    """ASGI middleware recording :func:`event_of` each answered request in ``store.audit``."""

    def __init__(self, app: ASGIApp, store: Store) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in _READS:
            await self.app(scope, receive, send)
            return
        answered: list[int] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered.append(int(message["status"]))
            await send(message)

        await self.app(scope, receive, watch)
        if not answered:
            return
        event = event_of(scope, answered[0], datetime.now(UTC))
        if event is None:
            return
        try:
            await run_in_threadpool(self.store.audit.add, event)
        except Exception:  # the write is done and answered: say so, do not hide it
            log.exception("audit event not recorded", extra={"action": "audit.add"})
