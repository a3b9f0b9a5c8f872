"""Deciding a conflict: the care manager's side, the EHR's, or a merged record."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fhir_bridge import model as m
from fhir_bridge.documents import records_from_data
from fhir_bridge.errors import InputError
from fhir_bridge.store import PutResult, Store

Take = Literal["local", "ehr", "merged"]
TAKES: tuple[Take, ...] = ("local", "ehr", "merged")
DELETED = "deleted"  # the field of a conflict between a local deletion and an EHR edit


def resolve_conflict(
    store: Store, conflict_id: int, take: str, merged: m.Record | None, now: datetime
) -> tuple[str, PutResult]:
    """Close an open conflict with the chosen record, queued for its connection.

    Returns the connection the record goes back to, and the stored version. A local
    deletion that raced an EHR edit (field ``deleted``): taking the local side queues the
    deletion again (with ``If-Match`` on the edit now seen); taking the EHR's side (or a
    merged record) restores the record and queues it.
    """
    conflict = store.conflicts.get(conflict_id)
    if conflict is None or conflict.status != "open":
        raise InputError("id", f"no open conflict {conflict_id}")
    deletion = DELETED in conflict.fields
    if take == "local" and deletion:
        try:
            return conflict.connection, store.resolve_deletion_conflict(conflict_id, now)
        except LookupError:
            raise InputError(
                "id", f"{conflict.kind} {conflict.record_id} is no longer deleted"
            ) from None
    if take == "local":
        record = records_from_data(conflict.local, f"conflict {conflict_id} local")[0]
    elif take == "ehr":
        remote = {k: v for k, v in conflict.remote.items() if not (deletion and k == DELETED)}
        record = records_from_data(remote, f"conflict {conflict_id} ehr")[0]
    elif take == "merged":
        if merged is None:
            raise InputError("merged", "taking 'merged' needs the merged record")
        record = merged
    else:
        raise InputError("take", f"{take!r} is not one of {', '.join(TAKES)}")
    if (record.kind, record.id) != (conflict.kind, conflict.record_id):
        raise InputError("merged", f"that is not {conflict.kind} {conflict.record_id}")
    return conflict.connection, store.resolve_conflict(conflict_id, take, record, now)
