"""Sync routes: run a push or pull, status, dead letters, conflicts, the change feed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from fhir_bridge.config import Settings
from fhir_bridge.documents import records_from_data
from fhir_bridge.store import Change, Conflict, OutboxEntry, Run, Store
from fhir_bridge.sync import (
    Connection,
    pull_connection,
    push_connection,
    resolve_conflict,
    resolve_connection,
)

from ._deps import MAX_ROW_ID, Read, RowId, SettingsDep, StoreDep, Write

router = APIRouter(prefix="/v1", tags=["sync"])


class ResolveBody(BaseModel):
    take: Literal["local", "ehr", "merged"] = Field(
        description="Keep the care manager's record, the EHR's, or the merged one given"
    )
    record: dict[str, Any] | None = Field(
        default=None, description="The merged record (internal JSON), with take = merged"
    )


def _connection(settings: Settings, name: str) -> Connection:
    if name not in settings.connections:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no connection {name!r}")
    return resolve_connection(settings, name, None)


@router.post("/sync/{connection}/push", dependencies=[Write])
async def push(
    connection: str,
    store: StoreDep,
    settings: SettingsDep,
    patient: Annotated[str | None, Query(description="Only this patient's records")] = None,
    dry_run: Annotated[bool, Query(description="Plan only; write nothing")] = False,
) -> dict[str, Any]:
    """Push the connection's queued records now (the worker does this continuously)."""
    summary = await push_connection(
        store, _connection(settings, connection), settings, patient_id=patient, dry_run=dry_run
    )
    answer: dict[str, Any] = {"connection": connection, "counts": summary.counts()}
    if dry_run:
        answer["planned"] = [
            {
                "action": w.action,
                "resource_type": w.resource_type,
                "identifier": w.identifier,
                "changes": list(w.changes),
            }
            for w in summary.planned
        ]
    return answer


@router.post("/sync/{connection}/pull", dependencies=[Write])
async def pull(
    connection: str,
    store: StoreDep,
    settings: SettingsDep,
    patient: Annotated[str | None, Query(description="Only this patient's records")] = None,
) -> dict[str, Any]:
    """Bring the connection's EHR changes back now; conflicts are kept, not overwritten."""
    summary = await pull_connection(
        store, _connection(settings, connection), settings, patient_id=patient
    )
    return {"connection": connection, "counts": summary.counts(), "problems": summary.problems}


@router.get("/sync/status", dependencies=[Read])
def sync_status(store: StoreDep, settings: SettingsDep) -> dict[str, Any]:
    """Per connection: queue depth, dead letters, last push and pull; recent runs overall."""
    last = store.runs.last_finished()
    dead = store.outbox.dead_letters()
    return {
        "connections": {
            name: {
                "base_url": c.base_url,
                "queue": store.outbox.depth(name).as_dict(),
                "dead_letters": sum(e.connection == name for e in dead),
                "last_push": _run_or_none(last.get(name, {}).get("push")),
                "last_pull": _run_or_none(last.get(name, {}).get("pull")),
            }
            for name, c in settings.connections.items()
        },
        "dead_letters": len(dead),
        "open_conflicts": len(store.conflicts.find()),
        "failed_runs": [_run(r) for r in store.runs.recent(50) if r.outcome not in (None, "ok")][
            :10
        ],
        "recent_runs": [_run(r) for r in store.runs.recent(10)],
    }


def _run(r: Run) -> dict[str, Any]:
    return {
        "id": r.id,
        "connection": r.connection,
        "direction": r.direction,
        "started_at": r.started_at.isoformat(),
        "finished_at": None if r.finished_at is None else r.finished_at.isoformat(),
        "outcome": r.outcome,
        "counts": r.counts,
    }


def _run_or_none(r: Run | None) -> dict[str, Any] | None:
    return None if r is None else _run(r)


def _entry(e: OutboxEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "connection": e.connection,
        "kind": e.kind,
        "record_id": e.record_id,
        "patient_id": e.patient_id,
        "record_version": e.record_version,
        "attempts": e.attempts,
        "reason": e.last_error,
    }


@router.get("/dead-letters", dependencies=[Read])
def dead_letters(
    store: StoreDep,
    connection: Annotated[str | None, Query(description="Only this connection")] = None,
) -> dict[str, Any]:
    """Records that failed permanently, with the server's reason."""
    return {"items": [_entry(e) for e in store.outbox.dead_letters(connection)]}


@router.post("/dead-letters/{entry_id}/retry", dependencies=[Write])
def retry_dead_letter(entry_id: RowId, store: StoreDep) -> dict[str, Any]:
    """Queue one dead letter for another push."""
    if not store.outbox.requeue([entry_id], datetime.now(UTC)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dead letter {entry_id}")
    return {"id": entry_id, "status": "pending"}


def _conflict(c: Conflict) -> dict[str, Any]:
    return {
        "id": c.id,
        "connection": c.connection,
        "kind": c.kind,
        "record_id": c.record_id,
        "fields": c.fields,
        "base": c.base,
        "local": c.local,
        "remote": c.remote,
        "status": c.status,
        "created_at": c.created_at.isoformat(),
    }


@router.get("/conflicts", dependencies=[Read])
def conflicts(
    store: StoreDep,
    state: Annotated[
        Literal["open", "resolved", "all"], Query(alias="status", description="Which ones")
    ] = "open",
) -> dict[str, Any]:
    """Fields changed both by the care manager and in the EHR, waiting for a person."""
    return {
        "items": [_conflict(c) for c in store.conflicts.find(None if state == "all" else state)]
    }


def _found_conflict(store: Store, conflict_id: int) -> Conflict:
    found = store.conflicts.get(conflict_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no conflict {conflict_id}")
    return found


@router.get("/conflicts/{conflict_id}", dependencies=[Read])
def conflict(conflict_id: RowId, store: StoreDep) -> dict[str, Any]:
    return _conflict(_found_conflict(store, conflict_id))


@router.post("/conflicts/{conflict_id}/resolve", dependencies=[Write])
def resolve(conflict_id: RowId, body: ResolveBody, store: StoreDep) -> dict[str, Any]:
    """Decide a conflict; the chosen record is queued for the connection it came from."""
    if _found_conflict(store, conflict_id).status != "open":
        raise HTTPException(status.HTTP_409_CONFLICT, f"conflict {conflict_id} is resolved")
    merged = None
    if body.record is not None:
        merged = records_from_data(body.record, "record")[0]
    connection, result = resolve_conflict(store, conflict_id, body.take, merged, datetime.now(UTC))
    return {
        "id": conflict_id,
        "status": "resolved",
        "take": body.take,
        "queued_for": connection,
        "record": {"kind": result.kind, "id": result.id, "version": result.version},
    }


@router.get("/changes", dependencies=[Read], tags=["changes"])
def changes(
    store: StoreDep,
    since: Annotated[
        int, Query(ge=0, le=MAX_ROW_ID, description="The last cursor seen; 0 from the start")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Internal records changed by pulls, in the order applied; resume from ``next_cursor``."""
    items = store.changes.since(since, limit)
    return {
        "items": [_change(c) for c in items],
        "next_cursor": items[-1].cursor if items else since,
    }


def _change(c: Change) -> dict[str, Any]:
    return {
        "cursor": c.cursor,
        "connection": c.connection,
        "kind": c.kind,
        "id": c.record_id,
        "patient_id": c.patient_id,
        "version": c.record_version,
        "change": c.change,
        "at": c.at.isoformat(),
    }
