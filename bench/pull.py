"""Pull contenders: the bridge, fhirpy running the same searches, and raw httpx paging.

The searches are the bridge's own for an incremental pull: per pulled type, the deletions
from ``Type/_history?_since=`` (where the server declares type history, not for Task) and the
changes from ``Type?_lastUpdated=gt...&_sort=_lastUpdated&_count=100``, each from the
watermark the first pull left, less the two-minute overlap.
"""

from __future__ import annotations

import asyncio
import random
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from fhirpy import SyncFHIRClient

from fhir_bridge.fhir import FhirClient
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import PULLED_TYPES, Puller, PullSummary

from .push import CONNECTION, FHIR_JSON

Json = dict[str, Any]
OVERLAP = timedelta(minutes=2)
PAGE = 100


@dataclass(frozen=True)
class Search:
    path: str  # "Goal" or "Goal/_history"
    params: dict[str, str]


def searches(database_url: str) -> list[Search]:
    """The searches an incremental pull of this store sends, in its order."""
    store = Store(database_url)
    try:
        out = []
        for resource_type in PULLED_TYPES:
            watermark = store.watermarks.get(CONNECTION, resource_type)
            if watermark is None:  # no patient read yet (pull would read per patient)
                out.append(Search(resource_type, {"_count": str(PAGE), "_sort": "_lastUpdated"}))
                continue
            since = (datetime.fromisoformat(watermark.replace("Z", "+00:00")) - OVERLAP).isoformat()
            if resource_type not in ("Task", "Patient"):  # pull reads no deletions of those
                out.append(
                    Search(f"{resource_type}/_history", {"_since": since, "_count": str(PAGE)})
                )
            out.append(
                Search(
                    resource_type,
                    {"_lastUpdated": f"gt{since}", "_count": str(PAGE), "_sort": "_lastUpdated"},
                )
            )
        return out
    finally:
        store.close()


async def bridge_pull(database_url: str, base_url: str, ctx: MappingContext) -> PullSummary:
    """``fhir-bridge pull``: the Puller over the store, as the CLI runs it."""
    store = Store(database_url)
    try:
        async with FhirClient(base_url) as client:
            return await Puller(store, client, CONNECTION, ctx).pull()
    finally:
        store.close()


def copy_store(source: Path, target: Path) -> str:
    shutil.copyfile(source, target)
    return f"sqlite:///{target}"


async def edit_on_server(base_url: str, database_url: str, fraction: float, seed: int = 5) -> int:
    """A clinician's edits: ``fraction`` of the pushed goals and care plans get a note."""
    store = Store(database_url)
    try:
        links = [
            link
            for link in store.links.of_connection(CONNECTION)
            if link.resource_type in ("Goal", "CarePlan")
        ]
    finally:
        store.close()
    rng = random.Random(seed)  # noqa: S311 - synthetic edits
    chosen = [link for link in links if rng.random() < fraction] or links[:1]
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60.0) as http:
        for link in chosen:
            path = f"{link.resource_type}/{link.resource_id}"
            resource = (await http.get(path)).raise_for_status().json()
            note = {"text": "Discussed at the clinic visit.", "time": "2025-03-12T10:00:00Z"}
            resource["note"] = [*resource.get("note", []), note]
            (await http.put(path, json=resource)).raise_for_status()
    return len(chosen)


async def raw_paging(base_url: str, plan: list[Search]) -> int:
    """The same searches with httpx: follow ``next`` links, parse each page, count entries."""
    headers = {"Accept": FHIR_JSON, "Cache-Control": "no-cache"}
    count = 0
    async with httpx.AsyncClient(headers=headers, timeout=120.0) as http:
        for search in plan:
            url: str | None = f"{base_url}/{search.path}"
            params: dict[str, str] | None = search.params
            while url:
                page = (await http.get(url, params=params)).raise_for_status().json()
                count += len(page.get("entry") or [])
                url = next(
                    (lk["url"] for lk in page.get("link") or [] if lk.get("relation") == "next"),
                    None,
                )
                params = None
    return count


def fhirpy_searches(base_url: str, plan: list[Search]) -> int:
    """The same searches with fhirpy: ``fetch_all`` follows every page."""
    client = SyncFHIRClient(base_url, extra_headers={"Cache-Control": "no-cache"})
    count = 0
    for search in plan:
        if search.path.endswith("/_history"):
            url: str | None = f"{base_url}/{search.path}?{urlencode(search.params)}"
            while url:  # fhirpy has no history iterator: page with execute
                page = client.execute(url, method="get")
                count += len(page.get("entry") or [])
                url = next(
                    (lk["url"] for lk in page.get("link") or [] if lk.get("relation") == "next"),
                    None,
                )
            continue
        found = client.resources(search.path).search(**search.params).fetch_all()
        count += len(found)
    return count


def pulled(summary: PullSummary) -> int:
    return summary.new + summary.updated + summary.unchanged + summary.skipped + summary.failed


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)
