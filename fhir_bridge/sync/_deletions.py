"""Push, deletions: a record deleted here reaches each EHR that holds it, the way it accepts.

A local delete queues the record's deletion (an outbox entry with ``deleting``) for every
connection holding a resource of it (``Store.delete_record``). Push hands each claimed
patient's deletion entries here, under the patient's lease, before planning its writes. Per
resource the record left on the server (its links; a referral's Task before its
ServiceRequest):

- a type with an ``entered-in-error`` status (``_retraction``) that the server lets us
  update: the server's copy as we last saw it, with only the status changed, ``PUT`` by id
  with ``If-Match`` on the version we last saw;
- else, where the server takes ``DELETE`` of the type: the resource is read first (a newer
  version than we last saw is an edit we never saw), then deleted;
- else the entry waits, ``blocked``, with the reason (``status`` and the API show it).

An EHR edit since our last sight (412/409 on ``If-Match``, or a newer version on read) is a
conflict, settled by the connection's ``conflict_policy``: ``manual`` keeps it (field
``deleted``) for ``resolve``; ``local-wins`` deletes over the edit (the dropped version goes
to the sync log); ``ehr-wins`` withdraws the deletion and restores the record (the next pull
brings the edit in). A resource already entered in error, or gone (404/410), is done: a
deletion resent after a crash between the EHR's answer and our bookkeeping changes nothing.
What each patient's deletions left (links, sync log, entries, conflicts, restored records)
is written in one store transaction, under its lease. The EHR's own Patient in match mode is
never deleted.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from fhir_bridge import model as m
from fhir_bridge.errors import (
    AccessDenied,
    AuthError,
    BridgeError,
    LeaseLost,
    MappingError,
    NotSupportedByServer,
    ResourceGone,
    ResourceNotFound,
    VersionConflict,
)
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Closing, Gone, Link, NewConflict, OutboxEntry, Store, Written

from ._deletion_plan import PlannedDeletion, blocked_on, deletions, plan, reached, way_of
from ._incoming import Incoming
from ._limits import Limits, delete_refusal, write_refusal
from ._merge import Policy
from ._outcome import describe, said_of
from ._prepare import Patient
from ._recording import Recorder
from ._retraction import entered_in_error, is_entered_in_error
from ._send import Sender
from ._server_links import ServerLinks
from ._summary import PushSummary

log = logging.getLogger("fhir_bridge.sync")
Json = dict[str, Any]


@dataclass
class _End:
    """How one resource's deletion ended."""

    status: Literal["done", "blocked", "failed"] = "done"
    reason: str = ""
    blocked_on: str = ""
    error: BridgeError | None = None


@dataclass
class _Left:
    """What one patient's deletions leave behind, recorded in one transaction."""

    written: list[Written] = field(default_factory=list)
    gone: list[Gone] = field(default_factory=list)
    closing: list[Closing] = field(default_factory=list)
    conflicts: list[NewConflict] = field(default_factory=list)
    restored: list[m.Record] = field(default_factory=list)


@dataclass
class _Job:
    """One record's deletion on its way: its entry, the sender, what it leaves, the counts."""

    entry: OutboxEntry
    sender: Sender
    left: _Left
    summary: PushSummary


class Deleter:
    """Sends the local deletions of one connection's push."""

    def __init__(
        self,
        store: Store,
        connection: str,
        ctx: MappingContext,
        recorder: Recorder,
        *,
        policy: Policy,
        clock: Callable[[], datetime],
        patient_mode: Literal["match", "create"],
    ) -> None:
        self.store = store
        self.connection = connection
        self.recorder = recorder
        self.policy = policy
        self.clock = clock
        self.patient_mode = patient_mode
        self.reader = Incoming(
            store, connection, ctx, policy=policy, clock=clock, patient_mode=patient_mode
        )

    async def delete(
        self,
        patients: Sequence[Patient],
        sender: Sender,
        summary: PushSummary,
        run_id: int | None,
    ) -> None:
        """Each patient's deletion entries taken out of its entries, sent and recorded."""
        if not any(e.deleting for p in patients for e in p.entries):
            return
        disputed = self._disputed()
        for patient in patients:
            deleting = deletions(patient.entries)
            if not deleting:
                continue
            patient.entries = [e for e in patient.entries if not e.deleting]
            if patient.lost:
                continue
            links = self.store.links.of_records(
                self.connection, [(e.kind, e.record_id) for e in deleting]
            )
            left = _Left()
            for entry in deleting:
                key = (entry.kind, entry.record_id)
                if key in disputed:  # a person decides first; resolving queues the side taken
                    left.closing.append(self.recorder.done(entry))
                    continue
                job = _Job(entry, sender, left, summary)
                left.closing.append(await self._entry(job, links.get(key, [])))
            self._record(patient, left, summary, run_id)

    async def _entry(self, job: _Job, links: list[Link]) -> Closing:
        """One record's deletion: each of its resources on the server, the referencing ones
        first; the entry fails if one failed, waits if one is blocked, else is done."""
        entry, summary = job.entry, job.summary
        ends = [await self._resource(job, link) for link in reached(links, self.patient_mode)]
        failed = next((e for e in ends if e.status == "failed"), None)
        if failed is not None and failed.error is not None:
            return self.recorder.failed(entry, failed.error, failed.reason)
        blocked = next((e for e in ends if e.status == "blocked"), None)
        if blocked is not None:
            summary.not_supported += 1
            return self.recorder.blocked(entry, blocked.blocked_on, blocked.reason)
        return self.recorder.done(entry)

    def plan(self, entries: Sequence[OutboxEntry], caps: Limits) -> list[PlannedDeletion]:
        """For a dry run: what a push would do for the deletion entries of ``entries``."""
        deleting = deletions(entries)
        if not deleting:
            return []
        links = self.store.links.of_records(
            self.connection, [(e.kind, e.record_id) for e in deleting]
        )
        return plan(
            deleting, links, caps, patient_mode=self.patient_mode, disputed=self._disputed()
        )

    def _disputed(self) -> set[tuple[str, str]]:
        """The records whose deletion is a conflict on this connection not resolved yet."""
        return {
            (c.kind, c.record_id)
            for c in self.store.conflicts.find()
            if c.connection == self.connection
        }

    async def _resource(self, job: _Job, link: Link, *, again: bool = False) -> _End:
        caps = job.sender.caps
        way = way_of(link, caps)
        if way == "done":
            return _End()  # sent before: nothing more to do
        if way == "entered-in-error":
            return await self._retract(job, link, again=again)
        if way == "delete":
            return await self._delete(job, link, again=again)
        rtype = link.resource_type
        return _End("blocked", caps.why_not_deletable(rtype), blocked_on(rtype))

    async def _retract(self, job: _Job, link: Link, *, again: bool) -> _End:
        """``PUT`` the resource as entered in error, ``If-Match`` the version last seen."""
        entry, sender, left = job.entry, job.sender, job.left
        seen = link.server_json or link.sent_json or {}
        body = {**entered_in_error(seen), "id": link.resource_id}
        try:
            result = await sender.server.update(body, if_match=link.version_id)
        except VersionConflict as exc:
            return await self._raced(job, link, exc, again=again)
        except (ResourceNotFound, ResourceGone):
            left.gone.append(Gone(self.connection, link.resource_type, link.identifier))
            return _End()
        except (AccessDenied, AuthError):
            raise
        except NotSupportedByServer as exc:
            return _End("blocked", str(exc), link.resource_type)
        except BridgeError as exc:
            if getattr(exc, "status", None) == 405:  # the type's updates are refused
                sender.caps.refused(write_refusal(link.resource_type), 405, said_of(exc))
                return await self._resource(job, link, again=again)
            return _End("failed", describe(exc), error=exc)
        version = getattr(result, "version_id", None)
        resource = getattr(result, "resource", None)
        left.written.append(
            Written(
                link.resource_type,
                link.identifier,
                "entered-in-error",
                record_version=entry.record_version,
                server_version=version,
                link=dataclasses.replace(
                    link,
                    version_id=version,
                    last_updated=getattr(result, "last_modified", None) or link.last_updated,
                    server_json=resource if isinstance(resource, dict) else body,
                ),
            )
        )
        job.summary.deleted += 1
        return _End()

    async def _delete(self, job: _Job, link: Link, *, again: bool) -> _End:
        """Read the resource (an edit we never saw is a conflict), then ``DELETE`` it."""
        entry, sender, left = job.entry, job.sender, job.left
        rtype = link.resource_type
        try:
            current = await sender.server.read(rtype, link.resource_id)
        except (ResourceNotFound, ResourceGone):
            left.gone.append(Gone(self.connection, rtype, link.identifier))
            return _End()
        except (AccessDenied, AuthError):
            raise
        except BridgeError as exc:
            return _End("failed", describe(exc), error=exc)
        version = (current.get("meta") or {}).get("versionId")
        if not again and link.version_id is not None and version != link.version_id:
            return await self._conflict(job, link, current)
        try:
            await sender.server.delete(rtype, link.resource_id)  # type: ignore[attr-defined]
        except (ResourceNotFound, ResourceGone):
            pass
        except (AccessDenied, AuthError):
            raise
        except NotSupportedByServer as exc:
            return _End("blocked", str(exc), delete_refusal(rtype))
        except BridgeError as exc:
            if getattr(exc, "status", None) == 405:
                sender.caps.refused(delete_refusal(rtype), 405, said_of(exc))
                return _End("blocked", sender.caps.why_not_deletable(rtype), delete_refusal(rtype))
            return _End("failed", describe(exc), error=exc)
        left.gone.append(Gone(self.connection, rtype, link.identifier))
        left.written.append(
            Written(rtype, link.identifier, "deleted", record_version=entry.record_version)
        )
        job.summary.deleted += 1
        return _End()

    async def _raced(self, job: _Job, link: Link, exc: VersionConflict, *, again: bool) -> _End:
        """``If-Match`` refused: our own earlier write (entered in error already), gone, or
        an EHR edit since our last sight (a conflict)."""
        entry, sender, left = job.entry, job.sender, job.left
        try:
            current = await sender.server.read(link.resource_type, link.resource_id)
        except (ResourceNotFound, ResourceGone):
            left.gone.append(Gone(self.connection, link.resource_type, link.identifier))
            return _End()
        except (AccessDenied, AuthError):
            raise
        except BridgeError as error:
            return _End("failed", describe(error), error=error)
        if is_entered_in_error(current):  # sent before, its answer lost: keep what it holds
            left.written.append(self._seen(entry, link, current, "entered-in-error"))
            return _End()
        if again:  # edited again while we settled the first edit: tried later
            return _End("failed", describe(exc), error=exc)
        return await self._conflict(job, link, current)

    async def _conflict(self, job: _Job, link: Link, current: Json) -> _End:
        """The EHR edited the resource since our last sight: the connection's policy says."""
        entry, left = job.entry, job.left
        job.summary.conflicts += 1
        version = (current.get("meta") or {}).get("versionId")
        log.info(
            "deletion raced an EHR edit",
            extra={
                "action": "push.delete-conflict",
                "connection": self.connection,
                "kind": entry.kind,
                "record_id": entry.record_id,
                "policy": self.policy,
            },
        )
        local = self.store.records.deleted(entry.kind, entry.record_id)
        if self.policy == "local-wins":
            left.written.append(
                self._overruled(link, f"deleted: local-wins; dropped the EHR's version {version}")
            )
            fresh = dataclasses.replace(link, version_id=version, server_json=current)
            return await self._resource(job, fresh, again=True)
        if local is None:  # restored meanwhile: nothing left to decide
            return _End()
        if self.policy == "ehr-wins":
            left.written.append(
                self._overruled(link, "deleted: ehr-wins; the deletion withdrawn, record restored")
            )
            left.restored.append(local)  # the link stays: the next pull brings the edit in
            return _End()
        local_data = local.model_dump(mode="json", exclude_none=True)
        remote_data = self._remote(current, link) or local_data
        left.conflicts.append(
            NewConflict(
                kind=entry.kind,
                record_id=entry.record_id,
                fields=["deleted"],
                base={**local_data, "deleted": False},
                local={**local_data, "deleted": True},
                remote={**remote_data, "deleted": False},
            )
        )
        # the edit is seen now: taking the local side deletes with If-Match on it
        left.written.append(self._seen(entry, link, current, "conflict"))
        return _End()

    def _remote(self, current: Json, link: Link) -> Json | None:
        """The EHR's copy read back as our record (None when it cannot be read)."""
        try:
            record = self.reader.read_back(current, ServerLinks(self.store.links, self.connection))
        except (MappingError, ValueError):
            return None
        if link.record_id and record.id != link.record_id:
            record = record.model_copy(update={"id": link.record_id})
        return record.model_dump(mode="json", exclude_none=True)

    def _seen(self, entry: OutboxEntry, link: Link, current: Json, action: str) -> Written:
        meta = current.get("meta") or {}
        return Written(
            link.resource_type,
            link.identifier,
            action,
            record_version=entry.record_version,
            server_version=meta.get("versionId"),
            link=dataclasses.replace(
                link,
                version_id=meta.get("versionId"),
                last_updated=meta.get("lastUpdated"),
                server_json=current,
            ),
        )

    def _overruled(self, link: Link, detail: str) -> Written:
        return Written(link.resource_type, link.identifier, "overruled", detail=detail)

    def _record(
        self, patient: Patient, left: _Left, summary: PushSummary, run_id: int | None
    ) -> None:
        """All of one patient's deletions in one transaction, under its lease (lost: nothing
        recorded; the next push sends them again, safely)."""
        try:
            self.store.record_deletions(
                self.connection,
                run_id=run_id,
                written=left.written,
                gone=left.gone,
                closing=left.closing,
                conflicts=left.conflicts,
                restored=left.restored,
                leases=[patient.held.claim] if patient.held is not None else [],
                now=self.clock(),
            )
        except LeaseLost:
            if patient.held is not None:
                patient.held.lose()
            return
        for closing in left.closing:
            if closing.status == "failed" and closing.retry_at is None:
                summary.dead_lettered += 1
            elif closing.status == "failed":
                summary.failed += 1
