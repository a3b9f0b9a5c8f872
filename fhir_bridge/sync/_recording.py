"""Push, recording: what the server now holds, and what becomes of each outbox entry.

A write the server took becomes a link (server id, version, what we sent, the server's copy)
and a line of the sync log; a failed one a line of the log. An outbox entry is closed (done),
rescheduled or dead-lettered as the :class:`RetrySchedule` decides from the error, or left
waiting (blocked). All of one bundle is written in one store transaction
(``Store.record_push``). Under leases, nothing is recorded for a patient whose lease is lost
(the store refuses it: ``LeaseLost``): that patient's part is dropped, the links of what the
server took for it are distrusted (the next push writes them again), and the rest recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from fhir_bridge.errors import BridgeError, LeaseLost
from fhir_bridge.store import Closing, Link, OutboxEntry, Store, Written

from ._leases import Held
from ._outcome import Outcome
from ._retry import RetrySchedule
from ._summary import PushSummary


@dataclass
class Part:
    """One patient's share of a bundle (``held`` None: the shared directory, or no lease):
    its writes' outcomes with the record version each rendered, and its closed entries."""

    held: Held | None
    outcomes: list[tuple[Outcome, int | None]] = field(default_factory=list)
    closing: list[Closing] = field(default_factory=list)

    @property
    def lost(self) -> bool:
        return self.held is not None and self.held.lost


class Recorder:
    """Records one connection's push outcomes in the store."""

    def __init__(
        self,
        store: Store,
        connection: str,
        clock: Callable[[], datetime],
        schedule: RetrySchedule,
    ) -> None:
        self.store = store
        self.connection = connection
        self.clock = clock
        self.schedule = schedule

    async def record(
        self,
        parts: Sequence[Part],
        known: dict[str, str],
        summary: PushSummary,
        run_id: int | None,
    ) -> None:
        """Write the parts in one transaction; a part whose lease is lost is dropped (its
        held marked lost) and the others written. ``known`` learns the server ids.

        The transaction runs in a thread: the event loop goes on sending and reading the
        bundles of the other packs in flight meanwhile (a commit waits for the disk)."""
        live = await asyncio.to_thread(self._write, [p for p in parts if not p.lost], run_id)
        for part in live:
            for outcome, _ in part.outcomes:
                self._count(outcome, known, summary)
            for closing in part.closing:
                if closing.status == "failed" and closing.retry_at is None:
                    summary.dead_lettered += 1
                elif closing.status == "failed":
                    summary.failed += 1

    def _write(self, live: list[Part], run_id: int | None) -> list[Part]:
        """The parts written, in one transaction: those whose lease is still held."""
        while live:
            now = self.clock()
            try:
                self.store.record_push(
                    run_id=run_id,
                    written=[self._line(o, v) for p in live for o, v in p.outcomes],
                    closing=[c for p in live for c in p.closing],
                    leases=[p.held.claim for p in live if p.held is not None],
                    now=now,
                )
            except LeaseLost as exc:
                lost = next(
                    (p for p in live if p.held is not None and p.held.claim.key == exc.key), None
                )
                if lost is None or lost.held is None:
                    raise
                self._distrust(lost, now)
                lost.held.lose()
                live = [p for p in live if p is not lost]
                continue
            break
        return live

    def _line(self, outcome: Outcome, version: int | None) -> Written:
        write = outcome.write
        if outcome.failure is not None:
            return Written(
                write.resource_type,
                write.identifier,
                "failed",
                record_version=version,
                detail=outcome.failure.reason[:500],
            )
        return Written(
            write.resource_type,
            write.identifier,
            "created" if outcome.status == 201 else "updated",
            record_version=version,
            server_version=outcome.version_id,
            link=Link(
                self.connection,
                write.resource_type,
                write.identifier,
                write.entry.kind,
                write.entry.record_id,
                _resource_id(outcome),
                outcome.version_id,
                outcome.last_updated,
                write.sent_hash,
                write.entry.resource,
                outcome.resource or write.body,
            ),
        )

    def _count(self, outcome: Outcome, known: dict[str, str], summary: PushSummary) -> None:
        if outcome.failure is not None:
            return
        write = outcome.write
        known[write.full_url] = f"{write.resource_type}/{_resource_id(outcome)}"
        if outcome.status == 201:
            summary.created += 1
        else:
            summary.updated += 1

    def _distrust(self, part: Part, now: datetime) -> None:
        """The server took writes this worker may no longer make: never trust what their
        links say was sent, so the next push writes the records again on top of them."""
        for outcome, _ in part.outcomes:
            if outcome.failure is None:
                write = outcome.write
                self.store.links.distrust(
                    self.connection, write.resource_type, write.identifier, now
                )

    def done(self, entry: OutboxEntry) -> Closing:
        return Closing(entry, "done")

    def blocked(self, entry: OutboxEntry, resource_type: str, reason: str) -> Closing:
        """The server does not take ``resource_type``: the entry waits (not retried, not
        dead-lettered) until it does (``Outbox.unblock``)."""
        return Closing(entry, "blocked", reason, blocked_on=resource_type)

    def failed(self, entry: OutboxEntry, error: BridgeError, reason: str) -> Closing:
        """Try the entry again later, or dead-letter it, as the retry schedule says."""
        retry_at = self.schedule.retry_at(error, entry.attempts + 1, self.clock())
        return Closing(entry, "failed", reason, retry_at=retry_at)


def _resource_id(outcome: Outcome) -> str:
    write = outcome.write
    return outcome.resource_id or (write.link.resource_id if write.link else "")
