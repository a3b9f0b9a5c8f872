"""Push, packs: several small patients' writes sent as one bundle, and recorded as one.

Patients are packed in the order given until their writes would pass ``bundle_size``; a
patient with more writes than that goes alone, cut into bundles in dependency order (a batch
bundle holds one dependency level: ``_plan.bundles``). A pack's bundles are sent one after
the other; what each left behind is recorded in one store transaction (``Recorder``), the
outbox entries of the pack's patients closed with the last one. Each patient keeps its own
lease: one found lost before a bundle is sent is left out of it, and nothing more is recorded
for it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime

from fhir_bridge.errors import AccessDenied, AuthError, LeaseLost
from fhir_bridge.store import Closing, OutboxEntry

from ._limits import BundleKind
from ._outcome import Failure, Outcome, not_attempted
from ._plan import Write, bundles
from ._prepare import Patient, RecordKey
from ._recording import Part, Recorder
from ._send import Sender
from ._summary import PushSummary


def packs(patients: Sequence[Patient], size: int) -> list[list[Patient]]:
    """Patients in packs of at most ``size`` writes; a patient with more goes alone."""
    found: list[list[Patient]] = []
    current: list[Patient] = []
    count = 0
    for patient in patients:
        n = len(patient.writes)
        if n > size:
            found.append([patient])
            continue
        if current and count + n > size:
            found.append(current)
            current, count = [], 0
        current.append(patient)
        count += n
    if current:
        found.append(current)
    return found


class PackPusher:
    """Sends and records packs of one push run."""

    def __init__(
        self,
        sender: Sender,
        recorder: Recorder,
        summary: PushSummary,
        run_id: int | None,
        *,
        bundle_size: int,
        clock: Callable[[], datetime],
    ) -> None:
        self.sender = sender
        self.recorder = recorder
        self.summary = summary
        self.run_id = run_id
        self.bundle_size = bundle_size
        self.clock = clock

    def _groups(self, writes: list[Write]) -> list[list[Write]]:
        # single requests go in groups of one level too: one search by identifier per type
        # and group where the server has no conditional update (``_upsert``)
        kind: BundleKind = "transaction" if self.sender.mode == "transaction" else "batch"
        return bundles(writes, self.bundle_size, kind)

    async def directory(self, writes: list[Write], known: dict[str, str]) -> None:
        """The shared directory's writes (no patient's lease): sent, recorded; ``known``
        learns their server ids."""
        for group in self._groups(writes):
            outcomes = await self.sender.send(group, known)
            _raise_access_refused(outcomes)
            part = Part(None, [(o, None) for o in outcomes if not o.blocked])
            await self.recorder.record([part], known, self.summary, self.run_id)

    async def push(self, pack: Sequence[Patient], directory: dict[str, str]) -> None:
        """One pack: its bundles sent and recorded, its patients' entries closed."""
        known = dict(directory)
        for patient in pack:
            known |= patient.known
        owner = {id(w.entry): p for p in pack for w in p.writes}
        parts = {id(p): Part(p.held) for p in pack}
        results: dict[RecordKey, list[Outcome]] = defaultdict(list)
        caps = self.sender.caps
        for patient in pack:
            for w in patient.closed:
                why = caps.why_not_writable(w.resource_type)
                results[(w.entry.kind, w.entry.record_id)].append(not_attempted(w, why))
        unfinished: set[int] = set()
        groups = self._groups([w for p in pack for w in p.writes]) or [[]]
        for at, group in enumerate(groups):
            for outcome in await self._send(group, owner, known, unfinished):
                write = outcome.write
                key = (write.entry.kind, write.entry.record_id)
                results[key].append(outcome)
                if not outcome.blocked:
                    patient = owner[id(write.entry)]
                    parts[id(patient)].outcomes.append((outcome, patient.versions.get(key)))
            if at == len(groups) - 1:
                self._close(pack, parts, results, unfinished)
            await self.recorder.record(list(parts.values()), known, self.summary, self.run_id)
            for part in parts.values():
                part.outcomes = []

    async def _send(
        self,
        group: list[Write],
        owner: dict[int, Patient],
        known: dict[str, str],
        unfinished: set[int],
    ) -> list[Outcome]:
        """One bundle of a pack, without the writes of patients whose lease is lost."""
        now = self.clock()
        patients = list({id(owner[id(w.entry)]): owner[id(w.entry)] for w in group}.values())
        for patient in patients:
            if patient.held is not None and not patient.lost:
                try:
                    patient.held.check(now)
                except LeaseLost:
                    patient.held.lose()
        sendable = [w for w in group if not owner[id(w.entry)].lost]
        if not sendable:
            return []
        held = [p.held for p in patients if p.held is not None and not p.lost]
        try:
            outcomes = await self.sender.send(sendable, known, held)
        except LeaseLost as exc:
            # a conflict's resend found a lease lost: that patient is given up; what the
            # others sent in this bundle is not recorded (their entries stay queued: the next
            # push writes them again, by identifier)
            for patient in patients:
                if patient.held is not None and patient.held.claim.key == exc.key:
                    patient.held.lose()
                unfinished.add(id(patient))
            return []
        _raise_access_refused(outcomes)
        return outcomes

    def _close(
        self,
        pack: Sequence[Patient],
        parts: dict[int, Part],
        results: dict[RecordKey, list[Outcome]],
        unfinished: set[int],
    ) -> None:
        for patient in pack:
            if patient.lost or id(patient) in unfinished:
                continue
            parts[id(patient)].closing = [
                self._closing(entry, patient.broken, results.get((entry.kind, entry.record_id), []))
                for entry in patient.entries
            ]

    def _closing(
        self, entry: OutboxEntry, broken: dict[RecordKey, Failure], outcomes: list[Outcome]
    ) -> Closing:
        """An entry's end: failed (mapping or a write), else blocked (a type the server does
        not take waits for it), else done."""
        failure = broken.get((entry.kind, entry.record_id)) or next(
            (o.failure for o in outcomes if o.failure is not None and not o.blocked), None
        )
        blocked = [o for o in outcomes if o.blocked]
        self.summary.not_supported += len(blocked)
        if failure is not None:
            return self.recorder.failed(entry, failure.error, failure.reason)
        if blocked:
            first = blocked[0]
            reason = first.failure.reason if first.failure is not None else ""
            if any(
                o.write.resource_type == "DocumentReference" and o.failure is None for o in outcomes
            ):
                reason += "; its content was sent as a plan-of-care note (DocumentReference)"
            return self.recorder.blocked(entry, first.write.resource_type, reason)
        return self.recorder.done(entry)


def _raise_access_refused(outcomes: Sequence[Outcome]) -> None:
    """The first refusal of our credentials or scopes (401/403, or no token) among outcomes,
    raised: not the records' fault, none is failed, all stay queued."""
    for outcome in outcomes:
        error = outcome.failure.error if outcome.failure is not None else None
        if isinstance(error, AccessDenied | AuthError):
            raise error
