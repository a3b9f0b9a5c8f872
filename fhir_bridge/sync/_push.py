"""Push: drain a connection's outbox into its FHIR server.

For each patient with queued records, under a lease on that patient: map their records that
are routed to this connection (``store.Routing``: enrolment, referrals to an organisation's
own endpoint; ``routing`` None sends every record), plan the writes (``_plan``, pure), send
what changed as conditional updates keyed by our identifier (``_send``: transactions of
bounded size where the server supports them, else batches by dependency level, else single
requests), then record links and the sync log and close or reschedule the outbox entries
(``_recording``, with the ``_retry`` schedule). A retry, a lost response or a crash mid-run
never makes a second copy: every write names its resource by identifier.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol, cast

from fhir_bridge import model as m
from fhir_bridge.errors import AccessDenied, AuthError, MappingError
from fhir_bridge.mappers import (
    Entry,
    MappingContext,
    check_resource,
    directory_entries,
    plan_note_entries,
    resources_of,
)
from fhir_bridge.store import (
    Claim,
    Link,
    OutboxEntry,
    OutboxStatus,
    Routing,
    Store,
    as_shared,
)

from ._leases import Held, LeaseKeeper, Leases, process_id
from ._limits import BundleKind, Limits, Mode, load_limits
from ._matcher import MatchCapabilities, Matcher, MatchServer
from ._plan import bundles, identifier_of, plan
from ._recording import Recorder
from ._retry import DEFAULT_SCHEDULE, RetrySchedule
from ._send import Failure, Outcome, Sender, Server, not_attempted
from ._summary import PushSummary

log = logging.getLogger("fhir_bridge.sync")
RecordKey = tuple[str, str]
REMEMBER_REFUSALS = timedelta(days=7)


class PushServer(Server, MatchServer, Protocol):
    """What push needs of a FHIR client: writes, and the searches of matching."""


class Pusher:
    """Pushes one connection's outbox; safe to stop at any point and run again.

    ``server`` is the FHIR client (tests hand one built on an ``httpx.MockTransport``);
    ``retry`` decides when a failed record is tried again or dead-lettered;
    ``remember_refusals`` how long what the server refused at run time is remembered (None:
    until its CapabilityStatement changes or an operator forgets it). With
    ``patient_mode="match"`` the EHR owns the patient: each patient is matched to the EHR's
    Patient first (``_matcher``; ``mrn_system`` names the EHR's identifier), a patient not
    matched is held, and the EHR's Patient is never written.
    """

    def __init__(
        self,
        store: Store,
        server: PushServer,
        connection: str,
        ctx: MappingContext,
        *,
        bundle_size: int = 50,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        holder: str | None = None,
        keeper: LeaseKeeper | None = None,
        lease_seconds: float = 20.0,
        retry: RetrySchedule = DEFAULT_SCHEDULE,
        routing: Routing | None = None,
        remember_refusals: timedelta | None = REMEMBER_REFUSALS,
        patient_mode: Literal["match", "create"] = "create",
        mrn_system: str | None = None,
    ) -> None:
        self.routing = routing
        self.should_stop = should_stop
        self.remember_refusals = remember_refusals
        self.holder = holder or process_id("push")
        self.store = store
        self.server = server
        self.connection = connection
        self.ctx = ctx
        self.bundle_size = bundle_size
        self.clock = clock
        self.progress = progress
        self.leases = Leases(
            store, connection, self.holder, seconds=lease_seconds, clock=clock, keeper=keeper
        )
        self.recorder = Recorder(store, connection, clock, retry)
        self.matcher = (
            Matcher(
                store, server, connection, mrn_system=mrn_system, clock=clock, holder=self.holder
            )
            if patient_mode == "match"
            else None
        )

    async def _sender(self, *, dry_run: bool = False) -> Sender:
        """A sender in the mode that works: the CapabilityStatement, minus what the server
        refused before (stale memory forgotten first, blocked entries it takes again due)."""
        caps = await self.server.capabilities()
        fingerprint = getattr(caps, "fingerprint", None)
        limits = load_limits(
            self.store,
            self.connection,
            caps,
            fingerprint() if callable(fingerprint) else "",
            self.clock(),
            clock=self.clock,
            memory=self.remember_refusals,
            write=not dry_run,
        )
        return Sender(self.server, limits, self.clock, provenance=self.ctx.namespace)

    def enqueue_unsynced(self) -> int:
        """Queue what this connection was never sent (one process at a time does it)."""
        held = self.leases.claim("enqueue", "*", dead=self.leases.dead(), seconds=300)
        if held is None:
            return 0
        with held:
            return self.store.outbox.enqueue_unsynced(self.connection, self.clock(), self.routing)
        return 0  # the lease was lost: the process holding it now queues them

    async def push(self, *, patient_id: str | None = None, dry_run: bool = False) -> PushSummary:
        """Push what is due, patient by patient, each under a lease (a patient another
        process is pushing is left to it and counted ``busy``)."""
        summary = PushSummary()
        sender = await self._sender(dry_run=dry_run)
        if dry_run:
            due = self._everything(patient_id)
        else:
            self.enqueue_unsynced()
            # due as of now, after queueing: what was just queued is due too
            due = self.store.outbox.due(self.connection, self.clock(), patient_id)
        now = self.clock()
        by_patient: dict[str, list[OutboxEntry]] = defaultdict(list)
        for entry in due:
            by_patient[entry.patient_id or entry.record_id].append(entry)
        run_id = (
            None if dry_run else self.store.runs.start(self.connection, "push", now, self.holder)
        )
        started = time.monotonic()
        done = 0
        dead = [] if dry_run else self.leases.dead(roles=("push",))
        try:
            async with self.leases.renewing():
                for pid, entries in by_patient.items():
                    if self.should_stop():  # between patients: what is left stays queued
                        break
                    if dry_run:
                        await self._push_patient(pid, entries, sender, summary, None, dry_run=True)
                    elif (held := self.leases.claim("push", pid, dead=dead)) is None:
                        summary.busy += 1
                        continue
                    else:
                        # entries read before the claim may be stale: _push_held takes them again
                        await self._push_held(held, sender, summary, run_id)
                    done += len(entries)
                    if self.progress:
                        self.progress(done, len(due))
        except (AccessDenied, AuthError):
            # the connection's credentials were refused: stop; what is queued stays queued
            if run_id is not None:
                self.store.runs.finish(run_id, "failed", summary.counts(), self.clock())
            raise
        if run_id is not None:
            self._finish(run_id, summary, sender.mode, started)
        return summary

    async def push_claimed(self, claims: Sequence[Claim]) -> PushSummary:
        """Push the patients of leases this worker already took (``store.leases.claim_push``),
        concurrently; each lease is given back when its patient is done."""
        summary = PushSummary()
        try:
            sender = await self._sender()
            run_id = self.store.runs.start(self.connection, "push", self.clock(), self.holder)
        except BaseException:  # server or database away: hand the patients back at once
            for claim in claims:
                with contextlib.suppress(Exception):
                    self.store.leases.release(claim)
            raise
        started = time.monotonic()
        async with self.leases.renewing():
            # every patient runs to its end (and gives its lease back) before a failure of
            # one of them is raised
            results = await asyncio.gather(
                *(self._push_held(self.leases.hold(c), sender, summary, run_id) for c in claims),
                return_exceptions=True,
            )
        for result in results:
            if isinstance(result, BaseException):
                if isinstance(result, AccessDenied | AuthError):
                    self.store.runs.finish(run_id, "failed", summary.counts(), self.clock())
                raise result
        self._finish(run_id, summary, sender.mode, started)
        return summary

    async def _push_held(
        self, held: Held, sender: Sender, summary: PushSummary, run_id: int | None
    ) -> None:
        """One patient under its lease: what is due now, pushed; nothing recorded once the
        lease is lost (the patient is left to the process holding it now)."""
        with held:
            entries = self.store.outbox.due(self.connection, self.clock(), held.claim.key)
            if entries:
                await self._push_patient(
                    held.claim.key, entries, sender, summary, run_id, held=held
                )
        if held.lost:
            summary.lease_lost += 1

    def _finish(self, run_id: int, summary: PushSummary, mode: Mode, started: float) -> None:
        outcome = "ok" if not (summary.failed or summary.dead_lettered) else "partial"
        self.store.runs.finish(run_id, outcome, summary.counts(), self.clock())
        log.info(
            "push finished",
            extra={
                "action": "push",
                "connection": self.connection,
                "mode": mode,
                "duration_ms": int((time.monotonic() - started) * 1000),
                "counts": summary.counts(),
            },
        )

    def _everything(self, patient_id: str | None) -> list[OutboxEntry]:
        """For a dry run: every stored record, as if queued."""
        ids = [patient_id] if patient_id else self.store.records.patient_ids()
        now = self.clock()
        return [
            OutboxEntry(
                0, self.connection, r.kind, r.id, pid, 0, OutboxStatus.pending, 0, now, None
            )
            for pid in ids
            for r in self.store.records.of_patient(pid)
        ]

    async def _push_patient(
        self,
        patient_id: str,
        entries: list[OutboxEntry],
        sender: Sender,
        summary: PushSummary,
        run_id: int | None,
        *,
        dry_run: bool = False,
        held: Held | None = None,
    ) -> None:
        with_versions = self.store.records.of_patient_with_versions(patient_id)
        versions = {(r.kind, r.id): v for r, v in with_versions}
        caps: Limits = sender.caps
        mapped, broken = self._map(self._routed(patient_id, [r for r, _ in with_versions]))
        if self.matcher is not None:
            caps_ = cast("MatchCapabilities", sender.caps)
            match = await self.matcher.settle(patient_id, mapped, caps_, save=not dry_run)
            if match.state == "held":  # nothing of this patient is written: entries wait
                summary.held += 1
                return
        if not (caps.writable("CarePlan") and caps.writable("Goal")) and caps.writable(
            "DocumentReference"
        ):  # the plan's content reaches the EHR as a plan-of-care note instead
            mapped += plan_note_entries(self.ctx, mapped)
        links = self._links(mapped)
        writes = plan(mapped, links)
        if self.matcher is not None:  # the EHR owns its Patient: never written
            writes = [w for w in writes if w.resource_type != "Patient"]
        # a record with an open conflict here waits for a person: resolving it queues the
        # side taken, so nothing is written over the EHR's side before then
        disputed = {
            (c.kind, c.record_id)
            for c in self.store.conflicts.find()
            if c.connection == self.connection
        }
        writes = [w for w in writes if (w.entry.kind, w.entry.record_id) not in disputed]
        summary.unchanged += sum(w.action == "unchanged" for w in writes)
        closed = [
            w for w in writes if w.action != "unchanged" and not caps.writable(w.resource_type)
        ]
        writes = [w for w in writes if w.action != "unchanged" and w not in closed]
        if dry_run:
            summary.not_supported += len(closed)
            summary.planned += writes
            return
        results: dict[RecordKey, list[Outcome]] = defaultdict(list)
        for w in closed:
            results[(w.entry.kind, w.entry.record_id)].append(
                not_attempted(w, caps.why_not_writable(w.resource_type))
            )
        known = {
            e.full_url: f"{e.resource['resourceType']}/{link.resource_id}"
            for e in mapped
            if (link := links.get((e.resource["resourceType"], identifier_of(e.resource))))
            is not None
        }
        if self.matcher is not None:
            writes = await self.matcher.directory(writes, known)
        # single requests go in groups of one level too: one search by identifier per type
        # and group where the server has no conditional update (``_upsert``)
        kind: BundleKind = "transaction" if sender.mode == "transaction" else "batch"
        groups = bundles(writes, self.bundle_size, kind)
        lease = held.claim if held is not None else None
        for group in groups:
            if held is not None:
                held.check(self.clock())
            outcomes = await sender.send(group, known, held)
            refused = _access_refused(outcomes)
            if refused is not None:  # not the records' fault: none is failed, all stay queued
                raise refused
            for outcome in outcomes:
                key = (outcome.write.entry.kind, outcome.write.entry.record_id)
                results[key].append(outcome)
                if outcome.blocked:
                    continue
                self.recorder.outcome(
                    outcome, known, summary, run_id, lease=lease, version=versions.get(key)
                )
        for entry in entries:
            self._close(
                entry, broken, results.get((entry.kind, entry.record_id), []), summary, lease
            )

    def _close(
        self,
        entry: OutboxEntry,
        broken: dict[RecordKey, Failure],
        outcomes: list[Outcome],
        summary: PushSummary,
        lease: Claim | None,
    ) -> None:
        """An entry's end: failed (mapping or a write), else blocked (a type the server does
        not take waits for it), else done."""
        failure = broken.get((entry.kind, entry.record_id)) or next(
            (o.failure for o in outcomes if o.failure is not None and not o.blocked), None
        )
        blocked = [o for o in outcomes if o.blocked]
        summary.not_supported += len(blocked)
        if failure is not None:
            self.recorder.failed(entry, failure.error, failure.reason, summary, lease)
        elif blocked:
            first = blocked[0]
            reason = first.failure.reason if first.failure is not None else ""
            if any(
                o.write.resource_type == "DocumentReference" and o.failure is None for o in outcomes
            ):
                reason += "; its content was sent as a plan-of-care note (DocumentReference)"
            self.recorder.blocked(entry, first.write.resource_type, reason, lease)
        else:
            self.recorder.done(entry, lease)

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

    def _links(self, entries: Sequence[Entry]) -> dict[tuple[str, str], Link]:
        wanted: dict[str, list[str]] = defaultdict(list)
        for e in entries:
            wanted[e.resource["resourceType"]].append(identifier_of(e.resource))
        return {
            (resource_type, identifier): link
            for resource_type, identifiers in wanted.items()
            for identifier, link in self.store.links.find(
                self.connection, resource_type, identifiers
            ).items()
        }


def _access_refused(outcomes: Sequence[Outcome]) -> AccessDenied | AuthError | None:
    """The first refusal of our credentials or scopes (401/403, or no token) among outcomes."""
    for outcome in outcomes:
        error = outcome.failure.error if outcome.failure is not None else None
        if isinstance(error, AccessDenied | AuthError):
            return error
    return None
