"""Push: drain a connection's outbox into its FHIR server.

For each patient with queued records: map all their records, plan the writes (``_plan``),
send what changed as conditional updates keyed by our identifier (transactions of bounded
size where the server supports them, else batches by dependency level, else single
requests), then record links and the sync log and close or reschedule the outbox entries.
A retry, a lost response or a crash mid-run never makes a second copy: every write names
its resource by identifier.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from fhir_bridge import model as m
from fhir_bridge.errors import BridgeError, LeaseLost, MappingError
from fhir_bridge.mappers import (
    Entry,
    MappingContext,
    check_resource,
    directory_entries,
    resources_of,
)
from fhir_bridge.store import Claim, Link, OutboxEntry, OutboxStatus, Store

from ._leases import LeaseKeeper, dead_holders, kept, process_id
from ._plan import Write, bundle_of, bundles, keep_server_additions, plan, point_references
from ._summary import int_fields

log = logging.getLogger("fhir_bridge.sync")
Json = dict[str, Any]
Mode = Literal["transaction", "batch", "single"]
RecordKey = tuple[str, str]
MAX_ATTEMPTS = 8


class Capabilities(Protocol):
    def supports_transaction(self) -> bool: ...
    def supports_batch(self) -> bool: ...
    def writable(self, resource_type: str) -> bool: ...
    def supports_conditional_update(self, resource_type: str) -> bool: ...
    def supports_conditional_create(self, resource_type: str) -> bool: ...


class Server(Protocol):
    """What push needs of a FHIR client (``fhir_bridge.fhir.FhirClient`` provides it)."""

    async def capabilities(self) -> Any: ...
    async def transaction(self, bundle: Json) -> Json: ...
    async def batch(self, bundle: Json) -> Json: ...
    async def read(self, resource_type: str, resource_id: str) -> Json: ...
    async def conditional_update(
        self, resource: Json, query: str, if_match: str | None = None
    ) -> Any: ...
    async def update(self, resource: Json, if_match: str | None = None) -> Any: ...
    async def create(self, resource: Json, if_none_exist: str | None = None) -> Any: ...
    def search(self, resource_type: str, params: dict[str, str]) -> AsyncIterator[Json]: ...


@dataclass
class PushSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    dead_lettered: int = 0
    not_supported: int = 0
    busy: int = 0  # patients another worker was pushing: left to it
    lease_lost: int = 0  # patients given up because the lease was lost: redone by another
    planned: list[Write] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return int_fields(self)


@dataclass(frozen=True)
class Outcome:
    """How one write ended: ``error`` None means the server holds it now."""

    write: Write
    status: int
    resource_id: str | None = None
    version_id: str | None = None
    last_updated: str | None = None
    resource: Json | None = None
    error: str | None = None

    @property
    def conflict(self) -> bool:
        return self.status in (409, 412)

    @property
    def permanent(self) -> bool:
        return 400 <= self.status < 500 and self.status not in (408, 409, 412, 429)


def backoff(attempts: int) -> timedelta:
    """When to try a failed record again: 30 s doubling, at most an hour."""
    return timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts)))


class Pusher:
    """Pushes one connection's outbox; safe to stop at any point and run again."""

    caps: Capabilities  # read from the server at the start of each push
    keeper_in_use: LeaseKeeper | None = None  # renewing this push's leases

    def __init__(
        self,
        store: Store,
        server: Server,
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
    ) -> None:
        self.should_stop = should_stop
        self.holder = holder or process_id("push")
        self.keeper = keeper
        self.lease_seconds = lease_seconds
        self.store = store
        self.server = server
        self.connection = connection
        self.ctx = ctx
        self.bundle_size = bundle_size
        self.clock = clock
        self.progress = progress

    async def _mode(self) -> tuple[Capabilities, Mode]:
        caps = await self.server.capabilities()
        self.caps = caps
        mode: Mode = (
            "transaction"
            if caps.supports_transaction()
            else "batch"
            if caps.supports_batch()
            else "single"
        )
        return caps, mode

    @contextlib.asynccontextmanager
    async def _kept(self) -> AsyncIterator[LeaseKeeper]:
        """The worker's lease keeper, or one of this push's own renewing in the background."""
        async with kept(self.keeper, self.store, self.lease_seconds, self.clock) as keeper:
            self.keeper_in_use = keeper
            try:
                yield keeper
            finally:
                self.keeper_in_use = None

    def enqueue_unsynced(self) -> int:
        """Queue what this connection was never sent (one process at a time does it)."""
        now = self.clock()
        claim = self.store.leases.claim(
            self.connection,
            "enqueue",
            "*",
            holder=self.holder,
            now=now,
            seconds=300,
            dead=dead_holders(self.store),
        )
        if claim is None:
            return 0
        try:
            return self.store.outbox.enqueue_unsynced(self.connection, now)
        finally:
            self.store.leases.release(claim)

    async def push(self, *, patient_id: str | None = None, dry_run: bool = False) -> PushSummary:
        """Push what is due, patient by patient, each under a lease (a patient another
        process is pushing is left to it and counted ``busy``)."""
        summary = PushSummary()
        caps, mode = await self._mode()
        now = self.clock()
        if dry_run:
            due = self._everything(patient_id)
        else:
            self.enqueue_unsynced()
            due = self.store.outbox.due(self.connection, now, patient_id)
        by_patient: dict[str, list[OutboxEntry]] = defaultdict(list)
        for entry in due:
            by_patient[entry.patient_id or entry.record_id].append(entry)
        run_id = (
            None if dry_run else self.store.runs.start(self.connection, "push", now, self.holder)
        )
        started = time.monotonic()
        done = 0
        dead = [] if dry_run else dead_holders(self.store, roles=("push",))
        async with self._kept() as keeper:
            for pid, entries in by_patient.items():
                if self.should_stop():  # between patients: what is left stays queued
                    break
                if dry_run:
                    await self._push_patient(
                        pid,
                        entries,
                        caps=caps,
                        mode=mode,
                        summary=summary,
                        run_id=None,
                        dry_run=True,
                    )
                else:
                    claim = self.store.leases.claim(
                        self.connection,
                        "push",
                        pid,
                        holder=self.holder,
                        now=self.clock(),
                        seconds=self.lease_seconds,
                        dead=dead,
                    )
                    if claim is None:
                        summary.busy += 1
                        continue
                    with keeper.holding(claim):
                        # entries read before the claim may be stale: take them again
                        fresh = self.store.outbox.due(self.connection, self.clock(), pid)
                        await self._push_leased(
                            claim, fresh, caps=caps, mode=mode, summary=summary, run_id=run_id
                        )
                done += len(entries)
                if self.progress:
                    self.progress(done, len(due))
        if run_id is not None:
            self._finish(run_id, summary, mode, started)
        return summary

    async def push_claimed(self, claims: Sequence[Claim]) -> PushSummary:
        """Push the patients of leases this worker already took (``store.leases.claim_push``),
        concurrently; each lease is given back when its patient is done."""
        summary = PushSummary()
        try:
            caps, mode = await self._mode()
            run_id = self.store.runs.start(self.connection, "push", self.clock(), self.holder)
        except BaseException:  # server or database away: hand the patients back at once
            for claim in claims:
                with contextlib.suppress(Exception):
                    self.store.leases.release(claim)
            raise
        started = time.monotonic()
        async with self._kept() as keeper:

            async def one(claim: Claim) -> None:
                with keeper.holding(claim):
                    entries = self.store.outbox.due(self.connection, self.clock(), claim.key)
                    await self._push_leased(
                        claim, entries, caps=caps, mode=mode, summary=summary, run_id=run_id
                    )

            # every patient runs to its end (and gives its lease back) before a failure of
            # one of them is raised
            results = await asyncio.gather(*(one(c) for c in claims), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        self._finish(run_id, summary, mode, started)
        return summary

    async def _push_leased(
        self,
        claim: Claim,
        entries: list[OutboxEntry],
        *,
        caps: Capabilities,
        mode: Mode,
        summary: PushSummary,
        run_id: int | None,
    ) -> None:
        if not entries:
            return
        try:
            await self._push_patient(
                claim.key,
                entries,
                caps=caps,
                mode=mode,
                summary=summary,
                run_id=run_id,
                dry_run=False,
                lease=claim,
            )
        except LeaseLost:
            summary.lease_lost += 1
            log.warning(
                "lease lost: patient left to the worker holding it now",
                extra={"action": "push.lease_lost", "connection": self.connection},
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
                **summary.counts(),
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
        *,
        caps: Capabilities,
        mode: Mode,
        summary: PushSummary,
        run_id: int | None,
        dry_run: bool,
        lease: Claim | None = None,
    ) -> None:
        with_versions = self.store.records.of_patient_with_versions(patient_id)
        versions = {(r.kind, r.id): v for r, v in with_versions}
        mapped, broken = self._map([r for r, _ in with_versions])
        links = self._links(mapped)
        writes = plan(mapped, links)
        summary.unchanged += sum(w.action == "unchanged" for w in writes)
        blocked = [
            w for w in writes if w.action != "unchanged" and not caps.writable(w.resource_type)
        ]
        writes = [w for w in writes if w.action != "unchanged" and w not in blocked]
        summary.not_supported += len(blocked)
        if dry_run:
            summary.planned += writes
            return
        failed: dict[RecordKey, Outcome] = {}
        for w in blocked:
            failed[(w.entry.kind, w.entry.record_id)] = Outcome(
                w, 405, error=f"{w.resource_type} is read-only on this server (not attempted)"
            )
        known = {
            e.full_url: f"{e.resource['resourceType']}/{link.resource_id}"
            for e in mapped
            if (link := links.get((e.resource["resourceType"], _identifier(e)))) is not None
        }
        groups = (
            [[w] for w in writes] if mode == "single" else bundles(writes, self.bundle_size, mode)
        )
        for group in groups:
            if lease is not None and self.keeper_in_use is not None:
                self.keeper_in_use.check(lease)
            for outcome in await self._send(group, mode, known, lease):
                self._record(outcome, known, summary, run_id, lease=lease, versions=versions)
                if outcome.error is not None:
                    failed[(outcome.write.entry.kind, outcome.write.entry.record_id)] = outcome
        for entry in entries:
            key = (entry.kind, entry.record_id)
            if key in broken:
                self._fail(
                    entry,
                    f"cannot be mapped: {broken[key]}",
                    permanent=True,
                    summary=summary,
                    lease=lease,
                )
            elif key in failed:
                outcome = failed[key]
                permanent = outcome.permanent or outcome.status == 405
                self._fail(
                    entry,
                    outcome.error or "failed",
                    permanent=permanent,
                    summary=summary,
                    lease=lease,
                )
            else:
                self.store.outbox.mark_done(entry, self.clock(), lease)

    def _map(self, records: Sequence[m.Record]) -> tuple[list[Entry], dict[RecordKey, str]]:
        mapped: list[Entry] = []
        broken: dict[RecordKey, str] = {}
        for record in records:
            try:
                entries = resources_of(self.ctx, record)
                problems = [p for e in entries for p in check_resource(e.resource, e.record_id)]
                if problems:
                    raise MappingError(problems)
            except MappingError as exc:
                broken[(record.kind, record.id)] = str(exc)
                continue
            mapped += entries
        mapped += directory_entries(self.ctx, records)
        return mapped, broken

    def _links(self, entries: Sequence[Entry]) -> dict[tuple[str, str], Link]:
        wanted: dict[str, list[str]] = defaultdict(list)
        for e in entries:
            wanted[e.resource["resourceType"]].append(_identifier(e))
        return {
            (resource_type, identifier): link
            for resource_type, identifiers in wanted.items()
            for identifier, link in self.store.links.find(
                self.connection, resource_type, identifiers
            ).items()
        }

    async def _send(
        self, group: list[Write], mode: Mode, known: dict[str, str], lease: Claim | None = None
    ) -> list[Outcome]:
        """Send one group; on a version conflict, re-read the server's copies and try once more.

        Under a lease, the resend happens only while the lease is still held: a conflict may
        mean another worker took this patient over and wrote a newer version.
        """
        outcomes = await self._send_once(group, mode, known)
        conflicted = [o.write for o in outcomes if o.conflict]
        if not conflicted:
            return outcomes
        if lease is not None and not self.store.leases.holds(lease, self.clock()):
            raise LeaseLost(lease.connection, lease.scope, lease.key)
        refreshed = [await self._refresh(w) for w in conflicted]
        if mode == "transaction":  # the whole transaction was refused: send it all again
            retry = [refreshed[conflicted.index(w)] if w in conflicted else w for w in group]
            return await self._send_once(retry, mode, known)
        again = {id(o.write): o for o in await self._send_once(refreshed, mode, known)}
        return [
            again.get(id(refreshed[conflicted.index(o.write)]), o) if o.conflict else o
            for o in outcomes
        ]

    async def _send_once(
        self, group: list[Write], mode: Mode, known: dict[str, str]
    ) -> list[Outcome]:
        if mode == "single":
            return [await self._send_single(w, known) for w in group]
        kind: Literal["transaction", "batch"] = mode
        send = self.server.transaction if kind == "transaction" else self.server.batch
        try:
            response = await send(bundle_of(group, kind, known))
        except BridgeError as exc:
            status = _status_of(exc)
            if (
                kind == "transaction"
                and len(group) > 1
                and 400 <= status < 500
                and status not in (409, 412, 429)
            ):
                # one bad entry refuses the whole transaction: find it by sending one at a
                # time, in dependency order, each pointing at what those before it created
                return [await self._send_alone(w, kind, known) for w in group]
            return [Outcome(w, status, error=_describe(exc)) for w in group]
        results = response.get("entry") or []
        return [_outcome(w, r) for w, r in zip(group, results, strict=False)] + [
            Outcome(w, 502, error="no entry for it in the server's response")
            for w in group[len(results) :]
        ]

    async def _send_alone(
        self, write: Write, kind: Literal["transaction", "batch"], known: dict[str, str]
    ) -> Outcome:
        (outcome,) = await self._send_once([write], kind, known)
        if outcome.error is None and outcome.resource_id:
            known[write.full_url] = f"{write.resource_type}/{outcome.resource_id}"
        return outcome

    async def _send_single(self, write: Write, known: dict[str, str]) -> Outcome:
        body = point_references(write.body, set(), known)
        try:
            if write.link is not None:
                result = await self.server.update(
                    {**body, "id": write.link.resource_id}, if_match=write.link.version_id
                )
            elif self.caps.supports_conditional_update(write.resource_type):
                result = await self.server.conditional_update(
                    body, f"identifier={write.identifier}"
                )
            else:
                result = await self._search_then_write(write, body)
        except BridgeError as exc:
            return Outcome(write, _status_of(exc), error=_describe(exc))
        return Outcome(
            write,
            int(getattr(result, "status", 200)),
            resource_id=getattr(result, "id", None),
            version_id=getattr(result, "version_id", None),
            last_updated=getattr(result, "last_modified", None),
            resource=getattr(result, "resource", None),
        )

    async def _search_then_write(self, write: Write, body: Json) -> Any:
        """For servers without conditional update: find ours by identifier, then PUT or POST.

        The create is conditional (If-None-Exist) where the server allows it; otherwise it is a
        plain POST, which the client never resends on its own.
        """
        query = {"identifier": write.identifier}
        async for existing in self.server.search(write.resource_type, query):
            version = (existing.get("meta") or {}).get("versionId")
            merged = keep_server_additions(body, None, existing)
            return await self.server.update({**merged, "id": existing["id"]}, if_match=version)
        if self.caps.supports_conditional_create(write.resource_type):
            return await self.server.create(body, if_none_exist=f"identifier={write.identifier}")
        return await self.server.create(body)

    async def _refresh(self, write: Write) -> Write:
        """The write rebuilt on the server's current copy (a clinician changed it meanwhile)."""
        if write.link is None:
            return write
        try:
            current = await self.server.read(write.resource_type, write.link.resource_id)
        except BridgeError as exc:
            if _status_of(exc) in (404, 410):  # deleted on the server: create it again
                return dataclasses.replace(
                    write, link=None, action="create", body=write.entry.resource
                )
            raise
        version = (current.get("meta") or {}).get("versionId")
        link = dataclasses.replace(write.link, version_id=version, server_json=current)
        body = keep_server_additions(write.entry.resource, write.link.sent_json, current)
        return dataclasses.replace(write, link=link, body=body)

    def _record(
        self,
        outcome: Outcome,
        known: dict[str, str],
        summary: PushSummary,
        run_id: int | None,
        *,
        lease: Claim | None = None,
        versions: dict[RecordKey, int] | None = None,
    ) -> None:
        write = outcome.write
        now = self.clock()
        version = (versions or {}).get((write.entry.kind, write.entry.record_id))
        if outcome.error is not None:
            if run_id is not None:
                self.store.log.add(
                    run_id,
                    now,
                    write.resource_type,
                    write.identifier,
                    "failed",
                    record_version=version,
                    detail=outcome.error[:500],
                    lease=lease,
                )
            return
        resource_id = outcome.resource_id or (write.link.resource_id if write.link else "")
        link = Link(
            self.connection,
            write.resource_type,
            write.identifier,
            write.entry.kind,
            write.entry.record_id,
            resource_id,
            outcome.version_id,
            outcome.last_updated,
            write.sent_hash,
            write.entry.resource,
            outcome.resource or write.body,
        )
        created = outcome.status == 201
        try:
            if run_id is None:
                self.store.links.save([link], now, lease)
            else:
                self.store.log.add(
                    run_id,
                    now,
                    write.resource_type,
                    write.identifier,
                    "created" if created else "updated",
                    record_version=version,
                    server_version=outcome.version_id,
                    link=link,
                    lease=lease,
                )
        except LeaseLost:
            # the server took a write this worker may no longer make: never trust what the
            # link says was sent, so the next push writes the record again on top of it
            self.store.links.distrust(self.connection, write.resource_type, write.identifier, now)
            raise
        known[write.full_url] = f"{write.resource_type}/{resource_id}"
        if created:
            summary.created += 1
        else:
            summary.updated += 1

    def _fail(
        self,
        entry: OutboxEntry,
        reason: str,
        *,
        permanent: bool,
        summary: PushSummary,
        lease: Claim | None = None,
    ) -> None:
        now = self.clock()
        if permanent or entry.attempts + 1 >= MAX_ATTEMPTS:
            self.store.outbox.mark_failed(entry, reason, None, now, lease)
            summary.dead_lettered += 1
        else:
            self.store.outbox.mark_failed(entry, reason, now + backoff(entry.attempts), now, lease)
            summary.failed += 1


def _identifier(entry: Entry) -> str:
    own = entry.resource["identifier"][-1]
    return f"{own['system']}|{own['value']}"


def _outcome(write: Write, result: Json) -> Outcome:
    """One transaction/batch response entry, read."""
    response = result.get("response") or {}
    status_text = str(response.get("status") or "")
    status = int(status_text.split(maxsplit=1)[0]) if status_text[:3].isdigit() else 502
    if status >= 300:
        return Outcome(
            write, status, error=f"HTTP {status}: {_outcome_text(response.get('outcome') or {})}"
        )
    parts = str(response.get("location") or "").split("/")
    resource_id, version = None, None
    if "_history" in parts:
        at = parts.index("_history")
        resource_id = parts[at - 1]
        version = parts[at + 1] if at + 1 < len(parts) else None
    resource = result.get("resource") if isinstance(result.get("resource"), dict) else None
    if resource is not None:
        resource_id = resource_id or resource.get("id")
        version = version or (resource.get("meta") or {}).get("versionId")
    etag = str(response.get("etag") or "")
    if version is None and etag.startswith('W/"'):
        version = etag[3:-1]
    return Outcome(write, status, resource_id, version, response.get("lastModified"), resource)


def _outcome_text(outcome: Json) -> str:
    texts = [str(i.get("diagnostics") or i.get("code") or "") for i in outcome.get("issue") or []]
    return "; ".join(t for t in texts if t) or "no details"


def _status_of(exc: BridgeError) -> int:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else 503


def _describe(exc: BridgeError) -> str:
    """What to keep in the outbox about a failure: the error and the server's own words.

    (Stored for the operator in the dead-letter view; never logged, as diagnostics can quote
    resource content.)
    """
    issues = getattr(getattr(exc, "outcome", None), "issues", ())
    said = "; ".join(i.diagnostics for i in issues if getattr(i, "diagnostics", None))
    return f"{type(exc).__name__}: {exc}" + (f" - {said}" if said else "")
