"""Push, sending: one group of writes to the server (how each ended: ``_outcome``).

Groups go as a transaction or a batch Bundle, or request by request (``single``) when the
server runs neither. A transaction the server refuses for a reason that would be permanent
for its entries is sent again one entry at a time, to find the entry at fault. A version
conflict (someone changed the resource since we last saw it) is answered by re-reading the
server's copy, keeping what was added there, and sending once more.

What the server refuses as such (``_limits``): a transaction or batch refused as a mode is
sent again one mode down (batch, then single requests) in the same run, and remembered; a
type whose write is refused with 405 is not sent again (its entries wait, ``blocked``).
Where a type has no conditional update, the writes of resources the server has not
confirmed are preceded by one search by identifier per type (``_upsert``). Each transaction
carries a Provenance of its writes where the server takes them (``_provenance``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

from fhir_bridge.errors import BridgeError, MalformedResponse, ResourceGone, ResourceNotFound

from ._leases import Held
from ._limits import Limits, Mode, conditional_refusal, write_refusal
from ._outcome import (
    MISSING,
    Failure,
    Outcome,
    edited_before_retraction,
    failed,
    moved,
    names_mode,
    not_attempted,
    read_entry,
    refuses_mode,
    said_of,
    tracking_moved,
)
from ._plan import LEVELS, Write, bundle_of, bundles, keep_server_additions, point_references
from ._provenance import refuses_provenance, with_provenance
from ._retraction import is_entered_in_error
from ._upsert import resolve

Json = dict[str, Any]


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


class Sender:
    """Sends groups of writes to one server in one mode."""

    def __init__(
        self,
        server: Server,
        caps: Limits,
        clock: Callable[[], datetime],
        provenance: str | None = None,
    ) -> None:
        """``provenance``: the namespace naming us in the Provenance each transaction carries
        (``_provenance``); None: no Provenance."""
        self.server = server
        self.caps = caps
        self.clock = clock
        self.provenance = provenance

    @property
    def mode(self) -> Mode:
        """The mode of the next group: it moves down when the server refuses one."""
        return self.caps.mode()

    async def send(
        self, group: list[Write], known: dict[str, str], held: Sequence[Held] = ()
    ) -> list[Outcome]:
        """Send one group; on a version conflict, re-read the server's copies and try once more.

        ``known`` maps fullUrls to the server ids known so far (``Type/id``). Under leases
        (``held``: the patients whose writes the group holds), the resend happens only while
        every lease is still held: a conflict may mean another worker took a patient over and
        wrote a newer version.
        """
        mode = self.mode
        outcomes = await self._send_once(group, known)
        conflicted = [o.write for o in outcomes if o.conflict]
        if not conflicted:
            return outcomes
        for lease in held:
            lease.confirm(self.clock())
        # writes are matched by their entry: sending may replace a write (``_upsert``)
        first = {id(o.write.entry): o for o in outcomes}
        refreshed = {id(w.entry): await self._refresh(w) for w in conflicted}
        # the performer moved its Task along meanwhile: not resent, pull decides (a conflict)
        not_resent = {
            key: moved(w)
            for w in conflicted
            if w.resource_type == "Task"
            and tracking_moved(w.link, refreshed[key := id(w.entry)].link)
        }
        # nor is a status set to entered-in-error sent over an edit we never saw
        not_resent |= {
            id(w.entry): edited_before_retraction(w)
            for w in conflicted
            if id(w.entry) not in not_resent and retraction_over_edit(w, refreshed[id(w.entry)])
        }
        for key in not_resent:
            del refreshed[key]
        if mode == "transaction" and all(o.conflict for o in outcomes):  # refused whole
            retry = [refreshed.get(id(w.entry), w) for w in group if id(w.entry) not in not_resent]
            resent = await self._send_once(retry, known) if retry else []
            again = {id(o.write.entry): o for o in resent}
            return [
                not_resent.get(key) or again.get(key) or first[key]
                for key in (id(w.entry) for w in group)
            ]
        resent = await self._send_once(list(refreshed.values()), known) if refreshed else []
        again = {id(o.write.entry): o for o in resent}
        return [
            (not_resent.get(key) or again.get(key, o)) if o.conflict else o
            for o, key in ((o, id(o.write.entry)) for o in outcomes)
        ]

    async def _send_once(self, group: list[Write], known: dict[str, str]) -> list[Outcome]:
        return await self._send_in(self.mode, group, known)

    async def _send_in(
        self, mode: Mode, group: list[Write], known: dict[str, str]
    ) -> list[Outcome]:
        """Send a group in ``mode``; writes of a type the server does not take are not sent,
        and a batch holds one dependency level (a transaction's group is cut up here)."""
        # outcomes by the write's entry: ``resolve`` replaces writes it searched for
        closed = [w for w in group if not self.caps.writable(w.resource_type)]
        by_entry = {
            id(w.entry): not_attempted(w, self.caps.why_not_writable(w.resource_type))
            for w in closed
        }
        sendable = await resolve(
            self.server, self.caps, [w for w in group if id(w.entry) not in by_entry]
        )
        for part in self._parts(mode, sendable):
            if mode == "single":
                outcomes = [await self._send_single(w, known) for w in part]
            else:
                outcomes = await self._send_bundle(part, mode, known)
            for outcome in outcomes:
                by_entry[id(outcome.write.entry)] = outcome
                written = outcome.write
                resource_id = outcome.resource_id or (written.link and written.link.resource_id)
                if outcome.failure is None and resource_id:
                    known[written.full_url] = f"{written.resource_type}/{resource_id}"
        # conditional updates the server refused as such: sent again, searching first
        again = [
            o.write
            for o in by_entry.values()
            if o.failure is not None
            and o.write.link is None
            and o.write.upsert == "conditional-update"
            and not self.caps.supports_conditional_update(o.write.resource_type)
        ]
        for outcome in await self._send_in(mode, again, known) if again else []:
            by_entry[id(outcome.write.entry)] = outcome
        return [by_entry[id(w.entry)] for w in group]

    def _parts(self, mode: Mode, group: list[Write]) -> list[list[Write]]:
        if mode == "single":
            return [[w] for w in group]
        if mode == "batch" and len({LEVELS.get(w.resource_type, 9) for w in group}) > 1:
            return bundles(group, len(group), "batch")
        return [group] if group else []

    async def _send_bundle(
        self, group: list[Write], kind: Literal["transaction", "batch"], known: dict[str, str]
    ) -> list[Outcome]:
        send = self.server.transaction if kind == "transaction" else self.server.batch
        bundle = bundle_of(group, kind, known)
        signed = kind == "transaction" and with_provenance(
            bundle, group, self.provenance, self.caps, self.clock()
        )
        try:
            response = await send(bundle)
        except BridgeError as exc:
            if signed and refuses_provenance(exc, self.caps):  # sent again, unsigned
                return await self._send_bundle(group, kind, known)
            if refuses_mode(exc):
                return await self._fall_back(group, kind, exc, known)
            if kind == "transaction" and len(group) > 1 and exc.permanent:
                # one bad entry refuses the whole transaction: find it by sending one at a
                # time, in dependency order, each pointing at what those before it created
                return [await self._send_alone(w, kind, known) for w in group]
            return [failed(w, exc) for w in group]
        results = response.get("entry") or []
        return [
            self._type_refused(read_entry(w, r)) for w, r in zip(group, results, strict=False)
        ] + [
            Outcome(w, 502, failure=Failure(MalformedResponse(MISSING, status=502), MISSING))
            for w in group[len(results) :]
        ]

    async def _fall_back(
        self,
        group: list[Write],
        kind: Literal["transaction", "batch"],
        exc: BridgeError,
        known: dict[str, str],
    ) -> list[Outcome]:
        """The server refused the Bundle as such: send the group one mode down. The mode is
        remembered as refused when the server's words name it ("transaction ... not
        supported"), or when the lower mode worked and no entry's type was refused (else the
        refusal may have been that type's, not the mode's)."""
        lower: Mode = "batch" if kind == "transaction" and self.caps.supports_batch() else "single"
        outcomes = await self._send_in(lower, group, known)
        worked = any(o.failure is None for o in outcomes) and not any(o.blocked for o in outcomes)
        if worked or names_mode(exc, kind):
            status = getattr(exc, "status", None)
            self.caps.refused(kind, status if isinstance(status, int) else None, said_of(exc))
        return outcomes

    def _type_refused(self, outcome: Outcome) -> Outcome:
        """A write answered 405 (Method Not Allowed) means the server does not take the
        type: remembered, and the entry waits instead of failing. A conditional update
        answered 501 or 400 "not supported" is remembered as such (``_send_in`` sends the
        write again, searching by identifier first)."""
        if outcome.failure is None:
            return outcome
        write, error = outcome.write, outcome.failure.error
        if (
            write.link is None
            and write.upsert == "conditional-update"
            and outcome.status in (400, 501)
            and refuses_mode(error)
        ):
            what = conditional_refusal(write.resource_type)
            self.caps.refused(what, outcome.status, said_of(error))
            return outcome
        if outcome.status != 405:
            return outcome
        self.caps.refused(write_refusal(write.resource_type), 405, said_of(error))
        return not_attempted(write, self.caps.why_not_writable(write.resource_type))

    async def _send_alone(
        self, write: Write, kind: Literal["transaction", "batch"], known: dict[str, str]
    ) -> Outcome:
        (outcome,) = await self._send_bundle([write], kind, known)
        if outcome.failure is None and outcome.resource_id:
            known[write.full_url] = f"{write.resource_type}/{outcome.resource_id}"
        return outcome

    async def _send_single(self, write: Write, known: dict[str, str]) -> Outcome:
        body = point_references(write.body, set(), known)
        query = f"identifier={write.identifier}"
        try:
            if write.link is not None:
                result = await self.server.update(
                    {**body, "id": write.link.resource_id}, if_match=write.link.version_id
                )
            elif write.upsert == "conditional-update":
                result = await self.server.conditional_update(body, query)
            elif write.upsert == "conditional-create":
                result = await self.server.create(body, if_none_exist=query)
            else:
                result = await self.server.create(body)
        except BridgeError as exc:
            return self._type_refused(failed(write, exc))
        return Outcome(
            write,
            int(getattr(result, "status", 200)),
            resource_id=getattr(result, "id", None),
            version_id=getattr(result, "version_id", None),
            last_updated=getattr(result, "last_modified", None),
            resource=getattr(result, "resource", None),
        )

    async def _refresh(self, write: Write) -> Write:
        """The write rebuilt on the server's current copy (a clinician changed it meanwhile)."""
        if write.link is None:
            return write
        try:
            current = await self.server.read(write.resource_type, write.link.resource_id)
        except (ResourceNotFound, ResourceGone):  # deleted on the server: create it again
            return dataclasses.replace(write, link=None, action="create", body=write.entry.resource)
        version = (current.get("meta") or {}).get("versionId")
        link = dataclasses.replace(write.link, version_id=version, server_json=current)
        body = keep_server_additions(write.entry.resource, write.link.sent_json, current)
        return dataclasses.replace(write, link=link, body=body)


def retraction_over_edit(write: Write, refreshed: Write) -> bool:
    """Whether a refused write would set entered-in-error over an EHR edit we never saw (the
    server's copy, read again, is not entered in error)."""
    current = refreshed.link.server_json if refreshed.link is not None else None
    return (
        is_entered_in_error(write.entry.resource)
        and current is not None
        and not is_entered_in_error(current)
    )
