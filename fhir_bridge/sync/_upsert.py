"""Push on a server without conditional update: search by identifier, then write.

``PUT Type?identifier=...`` creates or updates in one request where the server declares
conditional update. Where it does not (Oracle Health, Epic), every resource the server has
not confirmed yet is looked up by our identifier first, one search per type for the whole
group (``identifier=a,b,c``, a token search's OR), so a resource written by a run that was
killed before recording it is found and updated, never created twice. What is found becomes
an update by id with If-Match on the version found (keeping what the server added); what is
not becomes a create, conditional (If-None-Exist) only where the server declares it.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any, Protocol

from fhir_bridge.mappers import identifiers_of
from fhir_bridge.store import Link

from ._limits import Limits
from ._plan import Upsert, Write, keep_server_additions

Json = dict[str, Any]
SEARCH_CHUNK = 20  # identifiers per search (keeps the URL short)


class Searcher(Protocol):
    def search(self, resource_type: str, params: dict[str, str]) -> AsyncIterator[Json]: ...


def _unconfirmed(write: Write, caps: Limits) -> bool:
    return (
        write.link is None
        and write.upsert == "conditional-update"
        and not caps.supports_conditional_update(write.resource_type)
    )


async def resolve(server: Searcher, caps: Limits, group: list[Write]) -> list[Write]:
    """The group with each unconfirmed write (type without conditional update) turned into
    an update of the resource found by our identifier, or a create when none was found."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for write in group:
        if _unconfirmed(write, caps):
            wanted[write.resource_type].add(write.identifier)
    if not wanted:
        return group
    found: dict[tuple[str, str], Json] = {}
    for resource_type, identifiers in wanted.items():
        ordered = sorted(identifiers)
        for at in range(0, len(ordered), SEARCH_CHUNK):
            chunk = ordered[at : at + SEARCH_CHUNK]
            params = {"identifier": ",".join(chunk)}
            async for resource in server.search(resource_type, params):
                for ident in identifiers_of(resource):
                    key = f"{ident.get('system')}|{ident.get('value')}"
                    if key in identifiers:
                        found.setdefault((resource_type, key), resource)
    return [
        _found(w, found.get((w.resource_type, w.identifier)), caps) if _unconfirmed(w, caps) else w
        for w in group
    ]


def _found(write: Write, existing: Json | None, caps: Limits) -> Write:
    if existing is None:
        create: Upsert = (
            "conditional-create"
            if caps.supports_conditional_create(write.resource_type)
            else "create"
        )
        return dataclasses.replace(write, upsert=create)
    meta = existing.get("meta") or {}
    link = Link(
        caps.connection,
        write.resource_type,
        write.identifier,
        write.entry.kind,
        write.entry.record_id,
        str(existing["id"]),
        meta.get("versionId"),
        meta.get("lastUpdated"),
        None,
        None,
        existing,
    )
    body = keep_server_additions(write.body, None, existing)
    return dataclasses.replace(write, link=link, body=body, action="update")
