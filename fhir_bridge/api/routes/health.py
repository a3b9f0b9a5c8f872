"""Operations routes: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from fhir_bridge import metrics
from fhir_bridge.errors import StoreUnavailable

from .._deps import Read, SettingsDep, StoreDep
from .._responses import Health, LastContact, Ready, Unready

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
def readyz(store: StoreDep, settings: SettingsDep) -> Ready | JSONResponse:
    """The database answers; when each connection's server was last reached, and how."""
    try:
        store.ping()
        last = store.runs.last_finished()
    except Exception as exc:
        error = exc.error_type if isinstance(exc, StoreUnavailable) else type(exc).__name__
        return JSONResponse({"status": "database unreachable", "error": error}, 503)
    contact: dict[str, LastContact | None] = {}
    for name in settings.connections:
        finished = [r for r in last.get(name, {}).values() if r.finished_at is not None]
        latest = max(finished, key=lambda r: r.finished_at or r.started_at, default=None)
        contact[name] = None if latest is None else LastContact.of(latest)
    return Ready(status="ready", connections=contact)


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
