"""The FastAPI application: record ingest, mapping preview, sync status, notifications."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from fhir_bridge.config import Settings, load_settings
from fhir_bridge.errors import InputError, MappingError
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import Puller, resolve_connection

from ._deps import Read, StoreDep
from ._records import router as records_router
from ._webhook import webhook_router

log = logging.getLogger("fhir_bridge.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    Store(settings.database_url).close()  # bring the schema up to date once, at start
    app = FastAPI(title="fhir-bridge", version="0.1.0")
    app.state.settings = settings

    @app.exception_handler(MappingError)
    async def invalid(_: Request, exc: MappingError) -> JSONResponse:
        problems = [{"path": p.path, "reason": p.reason} for p in exc.problems]
        return JSONResponse({"detail": "invalid record", "problems": problems}, status_code=422)

    @app.exception_handler(InputError)
    async def unreadable(_: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    async def pull(connection: str, resources: list[dict[str, Any]] | None) -> None:
        target = resolve_connection(settings, connection, None)
        store = Store(settings.database_url, migrate=False)
        try:
            ctx = MappingContext(namespace=settings.namespace)
            async with target.client() as client:
                puller = Puller(
                    store, client, connection, ctx, policy=target.config.conflict_policy
                )
                summary = await (puller.pull() if resources is None else puller.apply(resources))
            log.info("notification applied", extra={"action": "notify.pull", **summary.counts()})
        except Exception:  # a failed notification must not take the service down
            log.exception("notification could not be applied", extra={"connection": connection})
        finally:
            store.close()

    app.include_router(webhook_router(settings, pull))

    @app.get("/v1/sync/status", dependencies=[Read], tags=["sync"])
    def sync_status(store: StoreDep) -> dict[str, Any]:
        return {
            "connections": {
                name: {"base_url": c.base_url, "queue": store.queue_depth(name)}
                for name, c in settings.connections.items()
            },
            "dead_letters": len(store.dead_letters()),
            "open_conflicts": len(store.conflicts()),
            "recent_runs": store.runs(10),
        }

    app.include_router(records_router)  # last: /v1/{collection}/{id} would shadow the above

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz(store: StoreDep) -> JSONResponse:
        try:
            with store.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            return JSONResponse(
                {"status": "database unreachable", "error": type(exc).__name__}, 503
            )
        return JSONResponse({"status": "ready"})

    return app
