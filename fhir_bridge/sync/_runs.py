"""One push or one pull of a connection, as the CLI, the API and the worker start them.

``transport`` (an ``httpx.AsyncBaseTransport``) replaces httpx's own under the FHIR client:
tests hand an ``httpx.MockTransport`` (or a respx router) that answers as a FHIR server would.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import httpx

from fhir_bridge import metrics
from fhir_bridge.config import Settings
from fhir_bridge.errors import AccessDenied, AuthError
from fhir_bridge.store import Store

from ._bulk import BulkPuller
from ._clients import KeptClients
from ._connection import Connection, routing_of
from ._pull import Puller
from ._push import Pusher
from ._summary import PullSummary, PushSummary


async def push_connection(
    store: Store,
    target: Connection,
    settings: Settings,
    *,
    patient_id: str | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    transport: httpx.AsyncBaseTransport | None = None,
) -> PushSummary:
    """Push the connection's outbox (or one patient's records) and count it in the metrics."""
    started = time.perf_counter()
    async with target.client(transport) as client, _naming(target.name):
        summary = await Pusher(
            store,
            client,
            target.name,
            settings.mapping_context(datetime.now(UTC)),
            bundle_size=target.config.bundle_size,
            remember_refusals=target.config.refusal_memory(),
            progress=progress,
            should_stop=should_stop,
            patient_mode=target.config.effective_patient_mode,
            mrn_system=target.config.mrn_system,
            routing=routing_of(settings),
            conflict_policy=target.config.conflict_policy,
        ).push(patient_id=patient_id, dry_run=dry_run)
    if not dry_run:
        ok = not (summary.failed or summary.dead_lettered)
        metrics.record_run(
            target.name, "push", summary.counts(), time.perf_counter() - started, ok=ok
        )
    return summary


async def pull_connection(
    store: Store,
    target: Connection,
    settings: Settings,
    *,
    patient_id: str | None = None,
    types: tuple[str, ...] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clients: KeptClients | None = None,
) -> PullSummary:
    """Pull the connection's changes (of ``types`` only, when given: a notification's), with a
    client of its own or one of ``clients`` (kept open between runs)."""
    started = time.perf_counter()
    lent = clients.lend(target.name) if clients is not None else target.client(transport)
    async with lent as client, _naming(target.name):
        puller = Puller(
            store,
            client,
            target.name,
            settings.mapping_context(datetime.now(UTC)),
            policy=target.config.conflict_policy,
            patient_mode=target.config.effective_patient_mode,
        )
        summary = await puller.pull(patient_id=patient_id, types=types)
    metrics.record_run(
        target.name, "pull", summary.counts(), time.perf_counter() - started, ok=not summary.failed
    )
    return summary


async def bulk_pull_connection(
    store: Store,
    target: Connection,
    settings: Settings,
    *,
    longest_pause: float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> tuple[PullSummary, int]:
    """A bulk initial load of the connection (``$export``), then an ordinary pull; the
    summary and how many resources the export delivered."""
    started = time.perf_counter()
    async with target.client(transport) as client, _naming(target.name):
        puller = BulkPuller(
            store,
            client,
            target.name,
            settings.mapping_context(datetime.now(UTC)),
            policy=target.config.conflict_policy,
        )
        summary, exported = await puller.pull_bulk(longest_pause=longest_pause)
    metrics.record_run(
        target.name, "pull", summary.counts(), time.perf_counter() - started, ok=not summary.failed
    )
    return summary, exported


@contextlib.asynccontextmanager
async def _naming(connection: str) -> AsyncIterator[None]:
    """A refusal of the connection's credentials or scopes, raised naming the connection."""
    try:
        yield
    except (AccessDenied, AuthError) as exc:
        raise exc.for_connection(connection) from None
