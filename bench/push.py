"""Push contenders: the bridge, the fhirpy peers, and the raw transaction ceiling.

Each takes the same panel into an empty server and returns how many resources it wrote.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from fhirpy import AsyncFHIRClient, SyncFHIRClient

from fhir_bridge import model as m
from fhir_bridge.fhir import FhirClient
from fhir_bridge.mappers import Entry, MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import Pusher, PushSummary
from fhir_bridge.sync._plan import identifier_of, point_references

from .prepared import Prepared, conditional_url

Json = dict[str, Any]
CONNECTION = "bench"
FHIR_JSON = "application/fhir+json"
NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


# ------------------------------------------------------------------ the bridge


def load(database_url: str, records: Iterable[m.Record]) -> int:
    """``fhir-bridge load``: records into the store, queued for the connection."""
    store = Store(database_url)
    try:
        return len(store.put_records(records, [CONNECTION], NOW))
    finally:
        store.close()


async def bridge_push(
    database_url: str,
    base_url: str,
    ctx: MappingContext,
    *,
    bundle_size: int = 50,
    max_in_flight: int = 8,
) -> PushSummary:
    """``fhir-bridge push``: Store, outbox and Pusher, as the CLI runs them."""
    store = Store(database_url)
    try:
        async with FhirClient(base_url, max_in_flight=max_in_flight) as client:
            pusher = Pusher(store, client, CONNECTION, ctx, bundle_size=bundle_size)
            return await pusher.push()
    finally:
        store.close()


def written(summary: PushSummary) -> int:
    return summary.created + summary.updated


# ------------------------------------------------------------------ the peers (fhirpy)


def _save_order(prepared: Prepared) -> list[list[Entry]]:
    return [prepared.directory, *prepared.patients]


def fhirpy_one_at_a_time(base_url: str, prepared: Prepared) -> int:
    """What a Python user writes with fhirpy: each resource saved by a conditional update
    (``PUT Type?identifier=...``), one after the other, references pointed at the ids the
    server gave the resources saved before."""
    client = SyncFHIRClient(base_url)
    known: dict[str, str] = {}
    count = 0
    for group in _save_order(prepared):
        for entry in group:
            resource_type = str(entry.resource["resourceType"])
            body = point_references(entry.resource, set(), known)
            search = client.resources(resource_type).search(
                identifier=identifier_of(entry.resource)
            )
            saved, _created = search.update(client.resource(resource_type, **body))
            known[entry.full_url] = f"{resource_type}/{saved.id}"
            count += 1
    return count


async def fhirpy_async(base_url: str, prepared: Prepared, concurrency: int = 8) -> int:
    """The same with fhirpy's async client, ``concurrency`` patients at a time (each patient's
    resources in dependency order), the directory first."""
    client = AsyncFHIRClient(base_url)
    known: dict[str, str] = {}
    gate = asyncio.Semaphore(concurrency)

    async def save(entry: Entry) -> None:
        resource_type = str(entry.resource["resourceType"])
        body = point_references(entry.resource, set(), known)
        search = client.resources(resource_type).search(identifier=identifier_of(entry.resource))
        saved, _created = await search.update(client.resource(resource_type, **body))
        known[entry.full_url] = f"{resource_type}/{saved.id}"

    async def one(entry: Entry) -> None:
        async with gate:
            await save(entry)

    async def patient(entries: list[Entry]) -> None:
        async with gate:
            for entry in entries:
                await save(entry)

    await asyncio.gather(*(one(e) for e in prepared.directory))
    await asyncio.gather(*(patient(p) for p in prepared.patients))
    return prepared.resources


# ------------------------------------------------------------------ the ceiling (raw httpx)


@dataclass(frozen=True)
class Lane:
    """Bundles that must go in order (one patient split over several), as encoded bytes."""

    bundles: list[bytes]
    entries: int


def _bundle(entries: Sequence[Entry], elsewhere: dict[str, str]) -> bytes:
    inside = {e.full_url for e in entries}
    rows = []
    for entry in entries:
        body = json.loads(json.dumps(entry.resource))
        _conditional_references(body, inside, elsewhere)
        rows.append(
            {
                "fullUrl": entry.full_url,
                "resource": body,
                "request": {"method": "PUT", "url": conditional_url(entry)},
            }
        )
    return json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": rows}).encode()


def _conditional_references(node: Any, inside: set[str], elsewhere: dict[str, str]) -> None:
    """References to resources outside the bundle become ``Type?identifier=...``."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref.startswith("urn:uuid:") and ref not in inside:
            if ref in elsewhere:
                node["reference"] = elsewhere[ref]
            else:
                del node["reference"]
        for value in node.values():
            _conditional_references(value, inside, elsewhere)
    elif isinstance(node, list):
        for value in node:
            _conditional_references(value, inside, elsewhere)


def ceiling_bundles(prepared: Prepared, bundle_size: int) -> tuple[Lane, list[Lane]]:
    """Pre-built transactions: the directory lane, then patient lanes.

    Whole patients are packed into one transaction up to ``bundle_size`` entries; a patient
    larger than that is cut, in dependency order, into bundles sent one after the other.
    References to resources in another bundle are conditional (``Type?identifier=...``).
    """
    elsewhere = {e.full_url: conditional_url(e) for group in _save_order(prepared) for e in group}
    directory = Lane(
        [
            _bundle(prepared.directory[i : i + bundle_size], elsewhere)
            for i in range(0, len(prepared.directory), bundle_size)
        ],
        len(prepared.directory),
    )
    lanes: list[Lane] = []
    packed: list[Entry] = []
    for entries in prepared.patients:
        if len(entries) > bundle_size:
            chunks = [entries[i : i + bundle_size] for i in range(0, len(entries), bundle_size)]
            lanes.append(Lane([_bundle(c, elsewhere) for c in chunks], len(entries)))
            continue
        if len(packed) + len(entries) > bundle_size:
            lanes.append(Lane([_bundle(packed, elsewhere)], len(packed)))
            packed = []
        packed += entries
    if packed:
        lanes.append(Lane([_bundle(packed, elsewhere)], len(packed)))
    return directory, lanes


async def raw_transactions(
    base_url: str, directory: Lane, lanes: list[Lane], concurrency: int = 8
) -> int:
    """POST the pre-built transactions with httpx, ``concurrency`` at a time."""
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(headers=headers, timeout=300.0, limits=limits) as http:

        async def run(lane: Lane) -> None:
            async with gate:
                for body in lane.bundles:
                    response = await http.post(base_url, content=body)
                    response.raise_for_status()

        await run(directory)
        await asyncio.gather(*(run(lane) for lane in lanes))
    return directory.entries + sum(lane.entries for lane in lanes)
