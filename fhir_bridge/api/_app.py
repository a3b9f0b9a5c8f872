"""The FastAPI application: records, sync, handoffs, change feed, notifications, metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI

from fhir_bridge import __version__
from fhir_bridge.config import Settings, load_settings
from fhir_bridge.store import Store
from fhir_bridge.sync import (
    KeptClients,
    Notifications,
    Worker,
    pull_connection,
    resolve_connection,
)

from ._audit import AuditWrites
from ._dashboard import router as dashboard_router
from ._dashboard_due import router as dashboard_due_router
from ._errors import answer_errors
from ._guard import InputGuard
from ._request_ids import RequestIds
from .routes import (
    audit,
    changes,
    conflicts,
    dead_letters,
    due,
    enrolments,
    handoffs,
    health,
    records,
    reports,
    sync,
)
from .routes.webhook import webhook_router

log = logging.getLogger("fhir_bridge.api")

DESCRIPTION = """Sync care plans, goals and referrals between a care-management system and EHR
FHIR R4 servers. Every route but `/healthz` and `/readyz` needs an API key
(`Authorization: Bearer <key>`, made with `fhir-bridge apikey create --scope read|write|admin`).
Every answer carries `X-Request-ID` (the caller's, when sane); every write is in `/v1/audit`."""


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

    # notifications' pulls share one open client per connection (``sync._clients``)
    clients = KeptClients(lambda name: resolve_connection(settings, name, None).client(transport))

    async def pull_notified(connection: str, resource_type: str | None) -> None:
        """What notifications cause: the type (or every type) pulled from the EHR itself."""
        target = resolve_connection(settings, connection, None)
        types = None if resource_type is None else (resource_type,)
        summary = await pull_connection(store, target, settings, types=types, clients=clients)
        log.info(
            "notification applied", extra={"action": "notify.pull", "counts": summary.counts()}
        )

    notifications = Notifications(pull_notified, window=settings.notification_window_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = None if worker is None else asyncio.create_task(worker.run())
        yield
        await notifications.close()  # what still waits is caught up by the next pull
        await clients.close()
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
    app.state.notifications = notifications
    app.add_middleware(AuditWrites, store=store)  # every write answered below 400
    # size limits and the API key before any body is read (routes read app.state.settings)
    app.add_middleware(
        InputGuard,
        max_body=lambda: int(app.state.settings.max_body_bytes),
        grant_of=lambda key: app.state.store.api_keys.check(key, datetime.now(UTC)),
    )
    app.add_middleware(RequestIds)  # outermost: every log line of a request carries its id

    answer_errors(app)

    app.include_router(health.router)
    app.include_router(webhook_router(settings, store, notifications.hint))
    app.include_router(sync.router)
    app.include_router(dead_letters.router)
    app.include_router(conflicts.router)
    app.include_router(changes.router)
    app.include_router(due.router)
    app.include_router(handoffs.router)
    app.include_router(enrolments.router)
    app.include_router(audit.router)
    app.include_router(reports.router)
    app.include_router(dashboard_router)
    app.include_router(dashboard_due_router)
    app.include_router(records.router)  # last: /v1/{collection}/{id} would shadow the above

    return app
