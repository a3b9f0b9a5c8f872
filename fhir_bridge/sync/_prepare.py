"""Push, preparing: what each patient of a push writes, read and planned a chunk at a time.

For a chunk of patients (each under its lease, or none in a dry run) the store is read once:
their due outbox entries, their records with versions, the open conflicts, the link heads of
every resource they render, and the whole links (with the copies the merge needs) of those
rendered otherwise than last sent. Per patient: the records routed to this connection are
mapped (``store.Routing``) and checked (a resource rendered as it was last sent passed the
checks then, and is not checked again), the patient matched on the EHR first in match mode (a
held patient writes nothing), the plan made (``_plan``, pure), and the writes split into the
patient's own and the shared directory's (practitioners, organisations, their roles), which
push sends once, before any patient that references them.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
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
from fhir_bridge.store import Link, LinkHead, OutboxEntry, Routing, Store, as_shared

from ._leases import Held
from ._limits import Limits
from ._matcher import MatchCapabilities, Matcher
from ._outcome import Failure
from ._plan import Write, identifier_of, plan, rendering_hash
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
        rendered: dict[str, Rendered] = {}
        for patient in patients:
            # mapping is CPU work: let the packs in flight and the lease keeper run between
            # patients (a lease not renewed in time is lost)
            await asyncio.sleep(0)
            with_versions = records.get(patient.key, [])
            patient.versions = {(r.kind, r.id): v for r, v in with_versions}
            routed = self._routed(patient.key, [r for r, _ in with_versions])
            rendered[patient.key] = self._render(routed)
        heads = self.store.links.heads_of(
            self.connection, (key_of(e) for r in rendered.values() for e in r.entries())
        )
        mapped: dict[str, list[Entry]] = {}
        unchanged: set[tuple[str, str]] = set()  # rendered as last sent: nothing to do
        for patient in patients:
            await asyncio.sleep(0)
            mapped[patient.key] = self._checked(rendered[patient.key], heads, unchanged)
            patient.broken = rendered[patient.key].broken
            if notes:
                mapped[patient.key] += plan_note_entries(self.ctx, mapped[patient.key])
        # what changed is compared with the copies we sent and the server returned
        links = self.store.links.find_all(
            self.connection,
            (
                k
                for entries in mapped.values()
                for e in entries
                if (k := key_of(e)) not in unchanged
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
                    self.connection, (key_of(e) for e in entries if e.kind == "patient")
                )
            self._plan(
                patient,
                mapped=entries,
                known={**heads, **links},
                unchanged=unchanged,
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
        known: Mapping[tuple[str, str], LinkHead | Link],
        unchanged: set[tuple[str, str]],
        links: dict[tuple[str, str], Link],
        caps: Limits,
        disputed: set[RecordKey],
        summary: PushSummary,
    ) -> None:
        """The patient's writes: the entries not ``unchanged`` planned against their links,
        the others counted (``known``: the server id of every entry sent before)."""

        def written_here(entry: Entry) -> bool:
            if self.matcher is not None and entry.kind == "patient":
                return False  # the EHR owns its Patient: never written
            return (entry.kind, entry.record_id) not in disputed

        changed = [e for e in mapped if key_of(e) not in unchanged]
        writes = [w for w in plan(changed, links) if written_here(w.entry)]
        summary.unchanged += sum(w.action == "unchanged" for w in writes)
        summary.unchanged += sum(written_here(e) for e in mapped if key_of(e) in unchanged)
        patient.closed = [
            w for w in writes if w.action != "unchanged" and not caps.writable(w.resource_type)
        ]
        sendable = [w for w in writes if w.action != "unchanged" and w not in patient.closed]
        patient.directory = [w for w in sendable if w.entry.kind in DIRECTORY]
        patient.writes = [w for w in sendable if w.entry.kind not in DIRECTORY]
        patient.known = {
            e.full_url: f"{e.resource['resourceType']}/{link.resource_id}"
            for e in mapped
            if (link := known.get(key_of(e))) is not None
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

    def _render(self, records: Sequence[m.Record]) -> Rendered:
        """Every record's resources, and the directory resources they name; a record that
        cannot be mapped is left out, with why."""
        rendered = Rendered()
        for record in records:
            try:
                rendered.records.append(((record.kind, record.id), resources_of(self.ctx, record)))
            except MappingError as exc:
                rendered.broken[(record.kind, record.id)] = _unmappable(exc)
        rendered.directory = directory_entries(self.ctx, records)
        return rendered

    def _checked(
        self,
        rendered: Rendered,
        heads: Mapping[tuple[str, str], LinkHead],
        unchanged: set[tuple[str, str]],
    ) -> list[Entry]:
        """The entries of ``rendered`` whose records pass the checks (a record failing them
        joins ``rendered.broken``); an entry rendered as it was last sent (it passed them
        then) is not checked again, and joins ``unchanged``."""
        found: list[Entry] = []
        for record, entries in rendered.records:
            problems = []
            for entry in entries:
                key = key_of(entry)
                if _sent_as_is(entry, heads.get(key)):
                    unchanged.add(key)
                else:
                    problems += check_resource(entry.resource, entry.record_id)
            if problems:
                rendered.broken[record] = _unmappable(MappingError(problems))
                continue
            found += entries
        for entry in rendered.directory:
            if _sent_as_is(entry, heads.get(key := key_of(entry))):
                unchanged.add(key)
        return found + rendered.directory


@dataclass
class Rendered:
    """One patient's records mapped, not checked yet: each record's entries, the directory
    entries they name, and the records that could not be mapped."""

    records: list[tuple[RecordKey, list[Entry]]] = field(default_factory=list)
    directory: list[Entry] = field(default_factory=list)
    broken: dict[RecordKey, Failure] = field(default_factory=dict)

    def entries(self) -> Iterator[Entry]:
        for _, entries in self.records:
            yield from entries
        yield from self.directory


def key_of(entry: Entry) -> tuple[str, str]:
    """An entry's link key: its resource type and our identifier."""
    return str(entry.resource["resourceType"]), identifier_of(entry.resource)


def _unmappable(exc: MappingError) -> Failure:
    return Failure(exc, f"cannot be mapped: {exc}")


def _sent_as_is(entry: Entry, head: LinkHead | None) -> bool:
    """Whether the entry renders as it was last sent to the server (the link's hash)."""
    return head is not None and head.sent_hash == rendering_hash(entry.resource)


def by_patient(entries: Sequence[OutboxEntry]) -> dict[str, list[OutboxEntry]]:
    """Outbox entries by patient, in the order first seen."""
    found: dict[str, list[OutboxEntry]] = defaultdict(list)
    for entry in entries:
        found[entry.patient_id or entry.record_id].append(entry)
    return found
