"""Push: drain a connection's outbox into its FHIR server.

A run takes the due patients a chunk at a time (``CHUNK``), each under a lease on that
patient (a patient another process is pushing is left to it). For a chunk the store is read
once (``_prepare``): the records routed to this connection (``store.Routing``: enrolment,
referrals to an organisation's own endpoint; ``routing`` None sends every record) are mapped
and the writes planned (``_plan``, pure). The shared directory (practitioners, organisations,
their roles) the chunk names and the server does not hold yet is written once, before any pack
naming it, while the next chunk is read (``_flight``); the patients go in packs (``_pack``:
small patients together in one bundle of at most ``bundle_size`` entries, a chunk's last
pack filled up by the next chunk's patients), up to
``max_in_flight`` packs at once. Each bundle goes as
conditional updates keyed by our identifier (``_send``: a transaction where the server runs
them, else batches by dependency level, else single requests), and what it left behind
(links, sync log, closed or rescheduled outbox entries) is recorded in one store transaction
(``_recording``, with the ``_retry`` schedule). A retry, a lost response or a crash mid-run
never makes a second copy: every write names its resource by identifier. A claimed patient's
local deletions are sent first (``_deletions``: entered-in-error or DELETE, under the same
lease).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Literal, Protocol

from fhir_bridge.errors import AccessDenied, AuthError
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Claim, OutboxEntry, OutboxStatus, Routing, Store

from ._deletions import Deleter
from ._flight import InFlight, new_directory
from ._leases import Held, LeaseKeeper, Leases, end_all, process_id
from ._limits import Mode, load_limits
from ._matcher import Matcher, MatchServer
from ._merge import Policy
from ._pack import PackPusher, packs
from ._plan import LEVELS, Write
from ._prepare import Patient, Preparer, by_patient
from ._recording import Recorder
from ._retry import DEFAULT_SCHEDULE, RetrySchedule
from ._send import Sender, Server
from ._summary import PushSummary

log = logging.getLogger("fhir_bridge.sync")
REMEMBER_REFUSALS = timedelta(days=7)
CHUNK = 8  # patients claimed, read and planned together (a few packs: claims are held briefly)


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
    matched is held, and the EHR's Patient is never written. ``max_in_flight`` bounds the
    packs sent at once (by default the FHIR client's own bound, else 8). ``conflict_policy``
    settles a local deletion that raced an EHR edit (``_deletions``).
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
        max_in_flight: int | None = None,
        conflict_policy: Policy = "manual",
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
        bound = getattr(server, "max_in_flight", None)
        self.max_in_flight = max_in_flight or (bound if isinstance(bound, int) else 8)
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
        self.preparer = Preparer(store, connection, ctx, routing, self.matcher)
        self.deleter = Deleter(
            store,
            connection,
            ctx,
            self.recorder,
            policy=conflict_policy,
            clock=clock,
            patient_mode=patient_mode,
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
        """Push what is due: the shared directory first, then the patients, several at a
        time, each under a lease (a patient another process is pushing is left to it and
        counted ``busy``)."""
        summary = PushSummary()
        sender = await self._sender(dry_run=dry_run)
        if dry_run:
            await self._dry_run(patient_id, sender, summary)
            return summary
        self.enqueue_unsynced()
        # due as of now, after queueing: what was just queued is due too
        keys, total = self._due(patient_id)
        run_id = self.store.runs.start(self.connection, "push", self.clock(), self.holder)
        started = time.monotonic()
        dead = self.leases.dead(roles=("push",))
        try:
            async with self.leases.renewing():
                # entries read before the claim may be stale: they are read again under it
                await self._run(
                    keys,
                    claim=lambda keys: self.leases.claim_many("push", keys, dead=dead),
                    sender=sender,
                    summary=summary,
                    run_id=run_id,
                    total=total,
                )
        except (AccessDenied, AuthError):
            # the connection's credentials were refused: stop; what is queued stays queued
            self.store.runs.finish(run_id, "failed", summary.counts(), self.clock())
            raise
        self._finish(run_id, summary, sender.mode, started)
        return summary

    def _due(self, patient_id: str | None) -> tuple[list[str], int]:
        """The patients with entries due now and how many entries they have: ids and counts
        only, paged by the store (``outbox.due_patients``); each patient's entries are read
        under its claim."""
        now = self.clock()
        if patient_id is not None:
            entries = self.store.outbox.due(self.connection, now, patient_id)
            return list(by_patient(entries)), len(entries)
        keys, total = [], 0
        for key, count in self.store.outbox.due_patients(self.connection, now):
            keys.append(key)
            total += count
        return keys, total

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
            held = {c.key: self.leases.hold(c).__enter__() for c in claims}
            try:
                await self._run(
                    list(held),
                    claim=lambda keys: {k: held[k] for k in keys},
                    sender=sender,
                    summary=summary,
                    run_id=run_id,
                    total=0,
                )
            except (AccessDenied, AuthError):
                self.store.runs.finish(run_id, "failed", summary.counts(), self.clock())
                raise
            finally:  # every lease given back, also of patients never reached
                end_all(list(held.values()))
        self._finish(run_id, summary, sender.mode, started)
        return summary

    async def _run(
        self,
        keys: Sequence[str],
        *,
        claim: Callable[[Sequence[str]], dict[str, Held]],
        sender: Sender,
        summary: PushSummary,
        run_id: int,
        total: int,
    ) -> None:
        """The patients of ``keys``, a chunk at a time: claimed (``claim``: those another
        process holds are left out), read and planned; the chunk's new directory resources
        are sent (after the earlier chunks' ones) while the next chunk is read, and its packs,
        up to ``max_in_flight`` at once, each after the directory they may name. A chunk's
        last pack waits for the next chunk's patients to fill it up (fewer, fuller bundles:
        the server's cost is per bundle as much as per resource). Every
        patient runs to its end (and gives its lease back) before a failure is raised; after
        one, or when asked to stop, no new pack starts (what is left stays queued)."""
        packer = PackPusher(
            sender,
            self.recorder,
            summary,
            run_id,
            bundle_size=self.bundle_size,
            clock=self.clock,
        )
        done = 0

        def sent(entries: int) -> None:
            nonlocal done
            done += entries
            if self.progress and total:
                self.progress(done, total)

        flight = InFlight(
            packer, summary, self.max_in_flight, sent=sent, should_stop=self.should_stop
        )
        written: set[tuple[str, str]] = set()  # directory resources sent in this run
        carried: list[Patient] = []  # a chunk's last pack, filled up by the next chunk
        try:
            for at in range(0, len(keys), CHUNK):
                if self.should_stop() or flight.failures:  # what is left stays queued
                    break
                patients = self._claim(keys[at : at + CHUNK], claim, summary)
                flight.claimed(patients)
                # local deletions first (``_deletions``); a patient with nothing else is done
                await self.deleter.delete(patients, sender, summary, run_id)
                flight.end([p for p in patients if not p.entries])
                patients = [p for p in patients if p.entries]
                ready = await self.preparer.prepare(patients, sender.caps, summary)
                flight.end([p for p in patients if p.held_by_ehr])
                writes = new_directory(ready, flight.directory, written, summary)
                if writes:
                    flight.write_directory(
                        partial(self._send_directory, writes, packer, flight.directory)
                    )
                *full, carried = packs(carried + ready, self.bundle_size) or [[]]
                for pack in full:
                    if not await flight.send(pack):
                        carried = []  # its patients' leases are given back by finish
                        break
            if carried:
                await flight.send(carried)
        finally:
            await flight.finish()

    def _claim(
        self,
        keys: Sequence[str],
        claim: Callable[[Sequence[str]], dict[str, Held]],
        summary: PushSummary,
    ) -> list[Patient]:
        """Claim the patients of ``keys`` and read their due entries under the claims (one
        query each); a patient with none due any more is given back at once."""
        held = {key: one.__enter__() for key, one in claim(keys).items()}
        summary.busy += len(keys) - len(held)
        due = self.store.outbox.due_of(self.connection, self.clock(), list(held))
        end_all([one for key, one in held.items() if key not in due])
        return [Patient(key, due[key], one) for key, one in held.items() if key in due]

    async def _send_directory(
        self, writes: list[Write], packer: PackPusher, directory: dict[str, str]
    ) -> None:
        """Directory writes sent before any patient referencing them (matched to the EHR's
        own first, when the EHR owns its directory)."""
        if self.matcher is not None:
            writes = await self.matcher.directory(writes, directory)
        if writes:
            await packer.directory(writes, directory)

    async def _dry_run(self, patient_id: str | None, sender: Sender, summary: PushSummary) -> None:
        """What a push would write (``summary.planned``), every stored record as if queued,
        and what the local deletions due now would do on the server
        (``summary.planned_deletions``)."""
        due = self.store.outbox.due(self.connection, self.clock(), patient_id, deletions_only=True)
        summary.planned_deletions = self.deleter.plan(due, sender.caps)
        patients = [Patient(k, v) for k, v in by_patient(self._everything(patient_id)).items()]
        for at in range(0, len(patients), CHUNK):
            if self.should_stop():
                break
            chunk = patients[at : at + CHUNK]
            for patient in await self.preparer.prepare(chunk, sender.caps, summary, dry_run=True):
                summary.not_supported += len(patient.closed)
                summary.planned += sorted(
                    patient.writes + patient.directory, key=lambda w: LEVELS.get(w.resource_type, 9)
                )

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
