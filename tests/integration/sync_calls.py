"""Push and pull against a test server the way the integration tests call them, and finding
what a push wrote there by our identifier."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx

from fhir_bridge.fhir import FhirClient
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import Puller, PullSummary, Pusher, PushSummary
from fhir_bridge.sync._merge import Policy

CONNECTION = "hapi"
NO_CACHE = {"Cache-Control": "no-cache"}


def push(store: Store, url: str, ctx: MappingContext, **options: Any) -> PushSummary:
    """One push of the ``hapi`` connection (``options``: the Pusher's)."""

    async def run() -> PushSummary:
        async with FhirClient(url) as client:
            return await Pusher(store, client, CONNECTION, ctx, **options).push()

    return asyncio.run(run())


def push_cleanly(store: Store, url: str, ctx: MappingContext) -> None:
    """A push that must neither fail nor dead-letter anything."""
    summary = push(store, url, ctx)
    if summary.failed or summary.dead_lettered:
        waiting = store.outbox.due(CONNECTION, datetime.max.replace(tzinfo=UTC))
        dead = store.outbox.dead_letters(CONNECTION)
        errors = Counter(e.last_error for e in [*waiting, *dead] if e.last_error)
        raise AssertionError(f"{summary}; errors: {dict(errors)}")


def pull(store: Store, url: str, ctx: MappingContext, policy: Policy = "manual") -> PullSummary:
    """One pull of the ``hapi`` connection."""

    async def run() -> PullSummary:
        async with FhirClient(url) as client:
            return await Puller(store, client, CONNECTION, ctx, policy=policy).pull()

    return asyncio.run(run())


def find_on_server(
    fhir: httpx.Client, resource_type: str, ctx: MappingContext, kind: str, record_id: str
) -> dict[str, Any]:
    """The one resource a push wrote for a record (found by our identifier, never cached)."""
    return find_by_identifier(fhir, resource_type, ctx.system(kind), record_id)


def find_by_identifier(
    fhir: httpx.Client, resource_type: str, system: str, value: str
) -> dict[str, Any]:
    bundle = fhir.get(
        f"/{resource_type}", params={"identifier": f"{system}|{value}"}, headers=NO_CACHE
    ).json()
    (entry,) = bundle["entry"]
    return dict(entry["resource"])
