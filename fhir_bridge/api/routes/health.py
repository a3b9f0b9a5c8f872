"""Operations routes: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse, Response

from fhir_bridge import metrics
from fhir_bridge.errors import StoreUnavailable
from fhir_bridge.store import Store

from .._deps import Read, SettingsDep, StoreDep
from .._responses import Health, LastContact, Ready, Unready

log = logging.getLogger("fhir_bridge.api")
router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Ready,
    responses={503: {"model": Unready, "description": "The database does not answer"}},
)
def readyz(
    store: StoreDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Ready | JSONResponse:
    """The database answers. Only to a caller with a ``read`` key: when each connection's
    server was last reached, and how (anyone else learns ready or not, nothing more)."""
    try:
        store.ping()
    except Exception as exc:
        error = exc.error_type if isinstance(exc, StoreUnavailable) else type(exc).__name__
        log.warning("not ready", extra={"action": "readyz", "error": error})
        return JSONResponse({"status": "database unreachable"}, 503)
    if not _may_read(store, authorization):
        return Ready(status="ready")
    last = store.runs.last_finished()
    contact: dict[str, LastContact | None] = {}
    for name in settings.connections:
        finished = [r for r in last.get(name, {}).values() if r.finished_at is not None]
        latest = max(finished, key=lambda r: r.finished_at or r.started_at, default=None)
        contact[name] = None if latest is None else LastContact.of(latest)
    return Ready(status="ready", connections=contact)


def _may_read(store: Store, authorization: str | None) -> bool:
    if not authorization or not authorization.lower().startswith("bearer "):
        return False
    scopes = store.api_keys.scopes(authorization[7:].strip())
    return scopes is not None and ("read" in scopes or "admin" in scopes)


@router.get("/metrics", dependencies=[Read], response_class=Response)
def prometheus(store: StoreDep, settings: SettingsDep) -> Response:
    """Prometheus text format: requests, retries, latency, runs, queue depth."""
    for name in settings.connections:
        depth = store.outbox.depth(name)
        for state in ("pending", "done", "dead"):
            metrics.QUEUE.labels(name, state).set(getattr(depth, state))
    metrics.DEAD_LETTERS.set(len(store.outbox.dead_letters()))
    metrics.CONFLICTS.set(len(store.conflicts.find()))
    return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")
