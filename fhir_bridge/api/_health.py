"""Operations routes: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from fhir_bridge import metrics

from ._deps import Read, SettingsDep, StoreDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(store: StoreDep, settings: SettingsDep) -> JSONResponse:
    """The database answers; when each connection's server was last reached, and how."""
    try:
        with store.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        last = store.last_runs()
    except Exception as exc:
        return JSONResponse({"status": "database unreachable", "error": type(exc).__name__}, 503)
    contact: dict[str, Any] = {}
    for name in settings.connections:
        runs = [r for r in last.get(name, {}).values() if r["finished_at"]]
        latest = max(runs, key=lambda r: r["finished_at"], default=None)
        contact[name] = latest and {
            "at": latest["finished_at"],
            "direction": latest["direction"],
            "outcome": latest["outcome"],
        }
    return JSONResponse({"status": "ready", "connections": contact})


@router.get("/metrics", dependencies=[Read], response_class=Response)
def prometheus(store: StoreDep, settings: SettingsDep) -> Response:
    """Prometheus text format: requests, retries, latency, runs, queue depth."""
    for name in settings.connections:
        depth = store.queue_depth(name)
        for state in ("pending", "done", "dead"):
            metrics.QUEUE.labels(name, state).set(depth.get(state, 0))
    metrics.DEAD_LETTERS.set(len(store.dead_letters()))
    metrics.CONFLICTS.set(len(store.conflicts()))
    return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")
