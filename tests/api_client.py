"""Calling the real FastAPI app in process (ASGI transport), as the API tests do."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from fhir_bridge.api import create_app
from fhir_bridge.api.routes.records import COLLECTIONS
from fhir_bridge.config import ConnectionConfig, Settings
from fhir_bridge.store import Store

# the API's collection of each record kind: goal -> goals
COLLECTION_OF = {kind: collection for collection, kind in COLLECTIONS.items()}


class Api:
    """``api("GET", "/v1/goals", key=...)``: one request through the whole app."""

    def __init__(
        self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        """``transport``: the way to the FHIR servers (a mock one answering as they would)."""
        self.settings = settings
        self.app: FastAPI = create_app(settings, transport=transport)

    def __call__(
        self, method: str, url: str, key: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if key:
            headers["Authorization"] = f"Bearer {key}"

        async def run() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bridge.test", timeout=120.0
            ) as client:
                return await client.request(method, url, headers=headers, **kwargs)

        return asyncio.run(run())

    def store(self) -> Store:
        return Store(self.settings.database_url, migrate=False)


def api_keys(database_url: str) -> dict[str, str]:
    """One key per scope: ``{"read": ..., "write": ..., "admin": ...}``."""
    store = Store(database_url)
    try:
        now = datetime.now(UTC)
        return {s: store.api_keys.create(s, [s], now) for s in ("read", "write", "admin")}
    finally:
        store.close()


def one_ehr_api(database_url: str) -> tuple[Api, dict[str, str]]:
    """The API over a store at ``database_url`` with one open EHR connection (``ehr``, every
    patient, patients created), and a key per scope."""
    settings = Settings(
        database_url=database_url,
        connections={
            "ehr": ConnectionConfig(
                base_url="http://ehr.test/fhir", enrol="all", patient_mode="create"
            )
        },
    )
    return Api(settings), api_keys(database_url)
