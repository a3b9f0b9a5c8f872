"""The FastAPI application."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI

from fhir_bridge.config import Settings, load_settings
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import Puller, resolve_connection

from ._webhook import webhook_router

log = logging.getLogger("fhir_bridge.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    app = FastAPI(title="fhir-bridge", version="0.1.0")

    async def pull(connection: str, resources: list[dict[str, Any]] | None) -> None:
        target = resolve_connection(settings, connection, None)
        store = Store(settings.database_url)
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

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
