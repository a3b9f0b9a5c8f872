"""Sync routes: run a push or a pull now, and the sync status of every connection."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status

from fhir_bridge.config import Settings
from fhir_bridge.sync import (
    Connection,
    accept_match,
    pull_connection,
    push_connection,
    resolve_connection,
    server_limits,
)

from .._deps import Read, SettingsDep, StoreDep, TransportDep, Write
from .._responses import (
    AcceptMatch,
    ConnectionStatus,
    NotSent,
    PatientMatch,
    PlannedDeletion,
    PlannedWrite,
    Pulled,
    Pushed,
    RefusedInteraction,
    RefusedMode,
    Run,
    SyncStatus,
)

router = APIRouter(prefix="/v1", tags=["sync"])


def _connection(settings: Settings, name: str) -> Connection:
    if name not in settings.connections:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no connection {name!r}")
    return resolve_connection(settings, name, None)


@router.post("/sync/{connection}/push", dependencies=[Write], response_model_exclude_unset=True)
async def push(
    connection: str,
    store: StoreDep,
    settings: SettingsDep,
    transport: TransportDep,
    patient: Annotated[str | None, Query(description="Only this patient's records")] = None,
    dry_run: Annotated[bool, Query(description="Plan only; write nothing")] = False,
) -> Pushed:
    """Push the connection's queued records now (the worker does this continuously)."""
    summary = await push_connection(
        store,
        _connection(settings, connection),
        settings,
        patient_id=patient,
        dry_run=dry_run,
        transport=transport,
    )
    if not dry_run:
        return Pushed(connection=connection, counts=summary.counts())
    planned = [
        PlannedWrite(
            action=w.action,
            resource_type=w.resource_type,
            identifier=w.identifier,
            changes=list(w.changes),
            warnings=list(w.warnings),
        )
        for w in summary.planned
    ]
    deletions = [PlannedDeletion(**asdict(d)) for d in summary.planned_deletions]
    return Pushed(
        connection=connection, counts=summary.counts(), planned=planned, planned_deletions=deletions
    )


@router.post("/sync/{connection}/pull", dependencies=[Write])
async def pull(
    connection: str,
    store: StoreDep,
    settings: SettingsDep,
    transport: TransportDep,
    patient: Annotated[str | None, Query(description="Only this patient's records")] = None,
) -> Pulled:
    """Bring the connection's EHR changes back now; conflicts are kept, not overwritten."""
    summary = await pull_connection(
        store, _connection(settings, connection), settings, patient_id=patient, transport=transport
    )
    return Pulled(connection=connection, counts=summary.counts(), problems=summary.problems)


@router.get("/sync/status", dependencies=[Read])
def sync_status(store: StoreDep, settings: SettingsDep) -> SyncStatus:
    """Per connection: queue depth, dead letters, last push and pull; recent runs overall."""
    last = store.runs.last_finished()
    dead = store.outbox.dead_letters()
    matches = store.matches.counts()
    enrolled = store.enrolments.counts()

    def latest(name: str, direction: str) -> Run | None:
        run = last.get(name, {}).get(direction)
        return None if run is None else Run.of(run)

    limits = server_limits(store)

    def limited(name: str, part: str) -> list[dict[str, Any]]:
        return list(limits.get(name, {}).get(part, []))

    return SyncStatus(
        connections={
            name: ConnectionStatus(
                base_url=c.base_url,
                queue=store.outbox.depth(name).as_dict(),
                enrol=c.enrol,
                enrolled=enrolled.get(name, 0),
                dead_letters=sum(e.connection == name for e in dead),
                last_push=latest(name, "push"),
                last_pull=latest(name, "pull"),
                not_sent=[NotSent(**x) for x in limited(name, "not_sent")],
                refused_modes=[RefusedMode(**x) for x in limited(name, "refused_modes")],
                refused_interactions=[
                    RefusedInteraction(**x) for x in limited(name, "refused_interactions")
                ],
                patient_mode=c.effective_patient_mode,
                matched=matches.get(name, {}).get("matched", 0),
                held=matches.get(name, {}).get("held", 0),
            )
            for name, c in settings.connections.items()
        },
        dead_letters=len(dead),
        open_conflicts=len(store.conflicts.find()),
        failed_runs=[Run.of(r) for r in store.runs.recent(50) if r.outcome not in (None, "ok")][
            :10
        ],
        recent_runs=[Run.of(r) for r in store.runs.recent(10)],
    )


@router.get("/sync/held", dependencies=[Read])
def held_patients(
    store: StoreDep,
    connection: Annotated[str | None, Query(description="Only this connection's")] = None,
) -> list[PatientMatch]:
    """Patients held because their EHR's Patient could not be matched (match mode), with why."""
    return [PatientMatch.of(m) for m in store.matches.held(connection)]


@router.post("/sync/{connection}/matches/{patient_id}", dependencies=[Write])
async def accept_patient_match(
    connection: str,
    patient_id: str,
    body: AcceptMatch,
    store: StoreDep,
    settings: SettingsDep,
    transport: TransportDep,
) -> PatientMatch:
    """Take the EHR's ``Patient/{server_id}`` (checked on the server) as this patient's; its
    held records go with the next push. 422 when the patient or the server's Patient is
    unknown."""
    target = _connection(settings, connection)
    found = await accept_match(
        store, target, patient_id, body.server_id, by="api", transport=transport
    )
    return PatientMatch.of(found)
