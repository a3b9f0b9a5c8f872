"""Push, sending: one group of writes to the server, and how each write ended.

Groups go as a transaction or a batch Bundle, or request by request (``single``) when the
server runs neither. A transaction the server refuses for a reason that would be permanent
for its entries is sent again one entry at a time, to find the entry at fault. A version
conflict (someone changed the resource since we last saw it) is answered by re-reading the
server's copy, keeping what was added there, and sending once more.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from fhir_bridge.errors import (
    BridgeError,
    MalformedResponse,
    NotSupportedByServer,
    ResourceGone,
    ResourceNotFound,
    VersionConflict,
)
from fhir_bridge.fhir import parse_outcome, status_error
from fhir_bridge.store import Link

from ._leases import Held
from ._plan import Write, bundle_of, keep_server_additions, point_references

Json = dict[str, Any]
Mode = Literal["transaction", "batch", "single"]


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


def mode_of(caps: Capabilities) -> Mode:
    """Transaction when the server declares it, else batch, else single requests."""
    if caps.supports_transaction():
        return "transaction"
    return "batch" if caps.supports_batch() else "single"


@dataclass(frozen=True)
class Failure:
    """Why a write did not happen: the error (its class and data decide whether to try
    again, see ``RetrySchedule``) and the reason kept in the outbox for the operator (it may
    quote the server's diagnostics: stored, never logged)."""

    error: BridgeError
    reason: str


@dataclass(frozen=True)
class Outcome:
    """How one write ended: ``failure`` None means the server holds it now."""

    write: Write
    status: int
    resource_id: str | None = None
    version_id: str | None = None
    last_updated: str | None = None
    resource: Json | None = None
    failure: Failure | None = None

    @property
    def conflict(self) -> bool:
        return self.status in (409, 412)


def not_attempted(write: Write) -> Outcome:
    """A write the server's CapabilityStatement rules out: never sent, failed for good."""
    interaction = "create" if write.link is None else "update"
    reason = f"{write.resource_type} is read-only on this server (not attempted)"
    return Outcome(
        write, 405, failure=Failure(NotSupportedByServer(write.resource_type, interaction), reason)
    )


class Sender:
    """Sends groups of writes to one server in one mode."""

    def __init__(
        self, server: Server, caps: Capabilities, mode: Mode, clock: Callable[[], datetime]
    ) -> None:
        self.server = server
        self.caps = caps
        self.mode = mode
        self.clock = clock

    async def send(
        self, group: list[Write], known: dict[str, str], held: Held | None = None
    ) -> list[Outcome]:
        """Send one group; on a version conflict, re-read the server's copies and try once more.

        ``known`` maps fullUrls to the server ids known so far (``Type/id``). Under a lease,
        the resend happens only while the lease is still held: a conflict may mean another
        worker took this patient over and wrote a newer version.
        """
        outcomes = await self._send_once(group, known)
        conflicted = [o.write for o in outcomes if o.conflict]
        if not conflicted:
            return outcomes
        if held is not None:
            held.confirm(self.clock())
        refreshed = [await self._refresh(w) for w in conflicted]
        # the performer moved its Task along meanwhile: not resent, pull decides (a conflict)
        moved = {
            id(w): _moved(w)
            for w, r in zip(conflicted, refreshed, strict=True)
            if w.resource_type == "Task" and _tracking_moved(w.link, r.link)
        }
        if moved:
            conflicted, refreshed = (
                [w for w in conflicted if id(w) not in moved],
                [r for w, r in zip(conflicted, refreshed, strict=True) if id(w) not in moved],
            )
        if self.mode == "transaction":  # the whole transaction was refused: send it all again
            retry = [
                refreshed[conflicted.index(w)] if w in conflicted else w
                for w in group
                if id(w) not in moved
            ]
            again = iter(await self._send_once(retry, known) if retry else [])
            return [moved[id(w)] if id(w) in moved else next(again) for w in group]
        resent = {id(o.write): o for o in await self._send_once(refreshed, known)}
        return [
            moved[id(o.write)]
            if id(o.write) in moved
            else (resent.get(id(refreshed[conflicted.index(o.write)]), o) if o.conflict else o)
            for o in outcomes
        ]

    async def _send_once(self, group: list[Write], known: dict[str, str]) -> list[Outcome]:
        if self.mode == "single":
            return [await self._send_single(w, known) for w in group]
        return await self._send_bundle(group, self.mode, known)

    async def _send_bundle(
        self, group: list[Write], kind: Literal["transaction", "batch"], known: dict[str, str]
    ) -> list[Outcome]:
        send = self.server.transaction if kind == "transaction" else self.server.batch
        try:
            response = await send(bundle_of(group, kind, known))
        except BridgeError as exc:
            if kind == "transaction" and len(group) > 1 and exc.permanent:
                # one bad entry refuses the whole transaction: find it by sending one at a
                # time, in dependency order, each pointing at what those before it created
                return [await self._send_alone(w, kind, known) for w in group]
            return [_failed(w, exc) for w in group]
        results = response.get("entry") or []
        missing = "no entry for it in the server's response"
        return [_outcome(w, r) for w, r in zip(group, results, strict=False)] + [
            Outcome(w, 502, failure=Failure(MalformedResponse(missing, status=502), missing))
            for w in group[len(results) :]
        ]

    async def _send_alone(
        self, write: Write, kind: Literal["transaction", "batch"], known: dict[str, str]
    ) -> Outcome:
        (outcome,) = await self._send_bundle([write], kind, known)
        if outcome.failure is None and outcome.resource_id:
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
            return _failed(write, exc)
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
        except (ResourceNotFound, ResourceGone):  # deleted on the server: create it again
            return dataclasses.replace(write, link=None, action="create", body=write.entry.resource)
        version = (current.get("meta") or {}).get("versionId")
        link = dataclasses.replace(write.link, version_id=version, server_json=current)
        body = keep_server_additions(write.entry.resource, write.link.sent_json, current)
        return dataclasses.replace(write, link=link, body=body)


_TRACKING = ("status", "statusReason", "businessStatus", "output", "note", "owner")


def _tracking_moved(before: Link | None, now: Link | None) -> bool:
    """Whether a Task's tracking elements differ between two server copies."""
    if before is None or now is None or before.server_json is None or now.server_json is None:
        return False
    return any(before.server_json.get(k) != now.server_json.get(k) for k in _TRACKING)


def _moved(write: Write) -> Outcome:
    """A Task write not resent: its tracking changed on the server since we last saw it."""
    reason = "the performer changed this Task since our last sync: pull decides first"
    error = VersionConflict(409, resource_type=write.resource_type)
    return Outcome(write, 409, failure=Failure(error, reason))


def _failed(write: Write, exc: BridgeError) -> Outcome:
    status = getattr(exc, "status", None)
    return Outcome(
        write, status if isinstance(status, int) else 503, failure=Failure(exc, _describe(exc))
    )


def _outcome(write: Write, result: Json) -> Outcome:
    """One transaction/batch response entry, read."""
    response = result.get("response") or {}
    status_text = str(response.get("status") or "")
    status = int(status_text.split(maxsplit=1)[0]) if status_text[:3].isdigit() else 502
    if status >= 300:
        outcome = response.get("outcome") or {}
        error = status_error(
            status,
            parse_outcome(outcome),
            None,
            method="",
            path="",
            resource_type=write.resource_type,
        )
        return Outcome(write, status, failure=Failure(error, f"HTTP {status}: {_said(outcome)}"))
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


def _said(outcome: Json) -> str:
    texts = [str(i.get("diagnostics") or i.get("code") or "") for i in outcome.get("issue") or []]
    return "; ".join(t for t in texts if t) or "no details"


def _describe(exc: BridgeError) -> str:
    """What to keep in the outbox about a failure: the error and the server's own words.

    (Stored for the operator in the dead-letter view; never logged, as diagnostics can quote
    resource content.)
    """
    issues = getattr(getattr(exc, "outcome", None), "issues", ())
    said = "; ".join(i.diagnostics for i in issues if getattr(i, "diagnostics", None))
    return f"{type(exc).__name__}: {exc} - {said}" if said else f"{type(exc).__name__}: {exc}"
