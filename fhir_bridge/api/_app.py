"""The FastAPI application: records, sync, handoffs, change feed, notifications, metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from fhir_bridge import __version__
from fhir_bridge.config import Settings, load_settings
from fhir_bridge.errors import (
    FhirError,
    FhirStatusError,
    HandoffRefused,
    InputError,
    MappingError,
    UnknownPatient,
)
from fhir_bridge.store import Store
from fhir_bridge.sync import Worker, pull_connection, resolve_connection

from ._dashboard import router as dashboard_router
from .routes import (
    changes,
    conflicts,
    dead_letters,
    due,
    enrolments,
    handoffs,
    health,
    records,
    sync,
)
from .routes.webhook import webhook_router

log = logging.getLogger("fhir_bridge.api")

DESCRIPTION = """Sync care plans, goals and referrals between a care-management system and EHR
FHIR R4 servers. Every route but `/healthz` and `/readyz` needs an API key
(`Authorization: Bearer <key>`, made with `fhir-bridge apikey create --scope read|write|admin`)."""


def create_app(
    settings: Settings | None = None,
    *,
    worker: Worker | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """The HTTP service; with ``worker``, the outbox is drained and pulls run in-process.

    ``transport`` replaces httpx's own under every FHIR client the routes make (push, pull,
    notifications, handoff delivery): tests hand a mock one answering as a FHIR server."""
    settings = settings or load_settings()
    # one store (one connection pool) for every request, its schema brought up to date once
    store = Store(settings.database_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = None if worker is None else asyncio.create_task(worker.run())
        yield
        if worker is not None and task is not None:
            worker.stop.set()  # finish the patient in flight; the rest stays queued
            await task
        store.close()

    app = FastAPI(
        title="fhir-bridge", version=__version__, description=DESCRIPTION, lifespan=lifespan
    )
    app.state.settings = settings
    app.state.store = store
    app.state.transport = transport

    @app.exception_handler(MappingError)
    async def invalid(_: Request, exc: MappingError) -> JSONResponse:
        problems = [{"path": p.path, "reason": p.reason} for p in exc.problems]
        return JSONResponse({"detail": "invalid record", "problems": problems}, status_code=422)

    @app.exception_handler(InputError)
    async def unreadable(_: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(UnknownPatient)
    async def unknown_patient(_: Request, exc: UnknownPatient) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(HandoffRefused)
    async def refused(_: Request, exc: HandoffRefused) -> JSONResponse:
        """A strict handoff not sent: what the check found, to fix before sending again."""
        return JSONResponse(
            {"detail": f"not sent: {exc.errors} errors in the check", "findings": exc.findings},
            status_code=422,
        )

    @app.exception_handler(FhirError)
    async def upstream(_: Request, exc: FhirError) -> JSONResponse:
        """The EHR's server failed or refused: a gateway error naming what it said."""
        headers = {}
        if isinstance(exc, FhirStatusError) and exc.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return JSONResponse(
            {"detail": f"the FHIR server: {exc}", "error": type(exc).__name__},
            status_code=503 if headers else 502,
            headers=headers,
        )

    async def notified(connection: str, resources: list[dict[str, Any]] | None) -> None:
        try:
            target = resolve_connection(settings, connection, None)
            summary = await pull_connection(
                store, target, settings, resources=resources, transport=transport
            )
            log.info("notification applied", extra={"action": "notify.pull", **summary.counts()})
        except Exception:  # a failed notification must not take the service down
            log.exception("notification could not be applied", extra={"connection": connection})

    app.include_router(health.router)
    app.include_router(webhook_router(settings, notified))
    app.include_router(sync.router)
    app.include_router(dead_letters.router)
    app.include_router(conflicts.router)
    app.include_router(changes.router)
    app.include_router(due.router)
    app.include_router(handoffs.router)
    app.include_router(enrolments.router)
    app.include_router(dashboard_router)
    app.include_router(records.router)  # last: /v1/{collection}/{id} would shadow the above

    return app
