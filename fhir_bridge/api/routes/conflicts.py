"""Conflicts: fields changed both by the care manager and in the EHR, and deciding them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from fhir_bridge.documents import records_from_data
from fhir_bridge.store import Conflict, Store
from fhir_bridge.sync import resolve_conflict

from .._deps import Read, RowId, StoreDep, Write
from .._responses import ConflictOut, Conflicts, Resolved, StoredVersion

router = APIRouter(prefix="/v1/conflicts", tags=["sync"])


class ResolveBody(BaseModel):
    take: Literal["local", "ehr", "merged"] = Field(
        description="Keep the care manager's record, the EHR's, or the merged one given"
    )
    record: dict[str, Any] | None = Field(
        default=None, description="The merged record (internal JSON), with take = merged"
    )


@router.get("", dependencies=[Read])
def conflicts(
    store: StoreDep,
    state: Annotated[
        Literal["open", "resolved", "all"], Query(alias="status", description="Which ones")
    ] = "open",
) -> Conflicts:
    """Fields changed both by the care manager and in the EHR, waiting for a person."""
    return Conflicts(
        items=[ConflictOut.of(c) for c in store.conflicts.find(None if state == "all" else state)]
    )


def _found_conflict(store: Store, conflict_id: int) -> Conflict:
    found = store.conflicts.get(conflict_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no conflict {conflict_id}")
    return found


@router.get("/{conflict_id}", dependencies=[Read])
def conflict(conflict_id: RowId, store: StoreDep) -> ConflictOut:
    return ConflictOut.of(_found_conflict(store, conflict_id))


@router.post("/{conflict_id}/resolve", dependencies=[Write])
def resolve(conflict_id: RowId, body: ResolveBody, store: StoreDep) -> Resolved:
    """Decide a conflict; the chosen record is queued for the connection it came from."""
    if _found_conflict(store, conflict_id).status != "open":
        raise HTTPException(status.HTTP_409_CONFLICT, f"conflict {conflict_id} is resolved")
    merged = None
    if body.record is not None:
        merged = records_from_data(body.record, "record")[0]
    connection, result = resolve_conflict(store, conflict_id, body.take, merged, datetime.now(UTC))
    return Resolved(
        id=conflict_id,
        status="resolved",
        take=body.take,
        queued_for=connection,
        record=StoredVersion(kind=result.kind, id=result.id, version=result.version),
    )
