"""Push, preparing: what each patient of a push writes, read and planned a chunk at a time.

For a chunk of patients (each under its lease, or none in a dry run) the store is read once:
their due outbox entries, their records with versions, the links of every resource they
render, the open conflicts. Per patient: the records routed to this connection are mapped
(``store.Routing``), the patient matched on the EHR first in match mode (a held patient
writes nothing), the plan made (``_plan``, pure), and the writes split into the patient's own
and the shared directory's (practitioners, organisations, their roles), which push sends once,
before any patient that references them.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from fhir_bridge import model as m
from fhir_bridge.errors import MappingError
from fhir_bridge.mappers import (
    Entry,
    MappingContext,
    check_resource,
    directory_entries,
    plan_note_entries,
    resources_of,
)
from fhir_bridge.store import Link, OutboxEntry, Routing, Store, as_shared

from ._leases import Held
from ._limits import Limits
from ._matcher import MatchCapabilities, Matcher
from ._outcome import Failure
from ._plan import Write, identifier_of, plan
from ._summary import PushSummary

RecordKey = tuple[str, str]
DIRECTORY = frozenset({"practitioner", "practitioner_role", "organization"})


@dataclass
class Patient:
    """One patient's share of a push: its due entries, and the writes planned for it."""

    key: str
    entries: list[OutboxEntry]
    held: Held | None = None
    versions: dict[RecordKey, int] = field(default_factory=dict)
    writes: list[Write] = field(default_factory=list)  # to send (not unchanged, writable)
    closed: list[Write] = field(default_factory=list)  # of a type the server does not take
    broken: dict[RecordKey, Failure] = field(default_factory=dict)  # could not be mapped
    known: dict[str, str] = field(default_factory=dict)  # fullUrl -> Type/id on the server
    directory: list[Write] = field(default_factory=list)  # shared parties, sent first
    held_by_ehr: bool = False  # match mode: not matched on the EHR, nothing written

    @property
    def lost(self) -> bool:
        return self.held is not None and self.held.lost


class Preparer:
    """Reads and plans the patients of one connection's push."""

    def __init__(
        self,
        store: Store,
        connection: str,
        ctx: MappingContext,
        routing: Routing | None,
        matcher: Matcher | None,
    ) -> None:
        self.store = store
        self.connection = connection
        self.ctx = ctx
        self.routing = routing
        self.matcher = matcher

    async def prepare(
        self,
        patients: Sequence[Patient],
        caps: Limits,
        summary: PushSummary,
        *,
        dry_run: bool = False,
    ) -> list[Patient]:
        """The patients planned (those held by the EHR's matching counted and left out)."""
        records = self.store.records.of_patients_with_versions([p.key for p in patients])
        # a record with an open conflict here waits for a person: resolving it queues the
        # side taken, so nothing is written over the EHR's side before then
        disputed = {
            (c.kind, c.record_id)
            for c in self.store.conflicts.find()
            if c.connection == self.connection
        }
        notes = not (caps.writable("CarePlan") and caps.writable("Goal")) and caps.writable(
            "DocumentReference"
        )  # the plan's content reaches the EHR as a plan-of-care note instead
        mapped: dict[str, list[Entry]] = {}
        for patient in patients:
            # mapping is CPU work: let the packs in flight and the lease keeper run between
            # patients (a lease not renewed in time is lost)
            await asyncio.sleep(0)
            with_versions = records.get(patient.key, [])
            patient.versions = {(r.kind, r.id): v for r, v in with_versions}
            routed = self._routed(patient.key, [r for r, _ in with_versions])
            mapped[patient.key], patient.broken = self._map(routed)
            if notes:
                mapped[patient.key] += plan_note_entries(self.ctx, mapped[patient.key])
        links = self.store.links.find_all(
            self.connection,
            (
                (str(e.resource["resourceType"]), identifier_of(e.resource))
                for entries in mapped.values()
                for e in entries
            ),
        )
        ready = []
        for patient in patients:
            entries = mapped[patient.key]
            if self.matcher is not None:
                match = await self.matcher.settle(
                    patient.key, entries, cast("MatchCapabilities", caps), save=not dry_run
                )
                if match.state == "held":  # nothing of this patient is written: entries wait
                    summary.held += 1
                    patient.held_by_ehr = True
                    continue
                # a matched patient's link was just made: read it
                links |= self.store.links.find_all(
                    self.connection,
                    (
                        ("Patient", identifier_of(e.resource))
                        for e in entries
                        if e.kind == "patient"
                    ),
                )
            self._plan(
                patient,
                mapped=entries,
                links=links,
                caps=caps,
                disputed=disputed,
                summary=summary,
            )
            ready.append(patient)
        return ready

    def _plan(
        self,
        patient: Patient,
        *,
        mapped: list[Entry],
        links: dict[tuple[str, str], Link],
        caps: Limits,
        disputed: set[RecordKey],
        summary: PushSummary,
    ) -> None:
        writes = plan(mapped, links)
        if self.matcher is not None:  # the EHR owns its Patient: never written
            writes = [w for w in writes if w.resource_type != "Patient"]
        writes = [w for w in writes if (w.entry.kind, w.entry.record_id) not in disputed]
        summary.unchanged += sum(w.action == "unchanged" for w in writes)
        patient.closed = [
            w for w in writes if w.action != "unchanged" and not caps.writable(w.resource_type)
        ]
        sendable = [w for w in writes if w.action != "unchanged" and w not in patient.closed]
        patient.directory = [w for w in sendable if w.entry.kind in DIRECTORY]
        patient.writes = [w for w in sendable if w.entry.kind not in DIRECTORY]
        patient.known = {
            e.full_url: f"{e.resource['resourceType']}/{link.resource_id}"
            for e in mapped
            if (link := links.get((e.resource["resourceType"], identifier_of(e.resource))))
            is not None
        }

    def _routed(self, patient_id: str, records: list[m.Record]) -> list[m.Record]:
        """What of the patient's records goes to this connection (see ``Routing``); a
        referral another connection's organisation fulfils comes without its Task."""
        if self.routing is None:
            return records
        enrolled = self.store.enrolments.get(patient_id, self.connection) is not None
        shares = self.routing.shares(records, self.connection, enrolled)
        return [
            as_shared(r, share, fulfilled_here=self.routing.fulfiller(r) == self.connection)
            for r in records
            if (share := shares.get((r.kind, r.id))) is not None
        ]

    def _map(self, records: Sequence[m.Record]) -> tuple[list[Entry], dict[RecordKey, Failure]]:
        """Every record's resources and directory resources; records that cannot be mapped
        (or whose resources fail the checks) are left out, with why."""
        mapped: list[Entry] = []
        broken: dict[RecordKey, Failure] = {}
        for record in records:
            try:
                entries = resources_of(self.ctx, record)
                problems = [p for e in entries for p in check_resource(e.resource, e.record_id)]
                if problems:
                    raise MappingError(problems)
            except MappingError as exc:
                broken[(record.kind, record.id)] = Failure(exc, f"cannot be mapped: {exc}")
                continue
            mapped += entries
        mapped += directory_entries(self.ctx, records)
        return mapped, broken


def by_patient(entries: Sequence[OutboxEntry]) -> dict[str, list[OutboxEntry]]:
    """Outbox entries by patient, in the order first seen."""
    found: dict[str, list[OutboxEntry]] = defaultdict(list)
    for entry in entries:
        found[entry.patient_id or entry.record_id].append(entry)
    return found
