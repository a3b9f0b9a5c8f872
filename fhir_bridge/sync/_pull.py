"""Pull: bring what clinicians changed in the EHR back into the care manager's records.

Per resource type (``PULLED_TYPES``: the managed patients' Patient for the demographics the
EHR owns, QuestionnaireResponse (a screening; the Observations derived from it are
rendered from it, not read back), Condition, MedicationStatement, MedicationRequest, CareTeam,
Goal, ServiceRequest,
Encounter (a discharge starts transitional care: ``_discharges``), Task and CarePlan, by
dependency level so a new resource's references to new ones resolve, two types of a level at
once), under a lease on its watermark:
find what changed since the watermark (``_lastUpdated`` where the server declares it and has
not refused it, else re-read each managed patient's resources and compare them with what
was last seen; a declared ``_lastUpdated`` search refused at run time is remembered in
``store.refusals`` and the run reads per patient instead), and the
deletions (type history); skip what the bridge itself wrote, read the rest into internal
records and merge them three-way with the local record against the last synced version
(``_incoming``), and apply each page with its watermark in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from fhir_bridge.errors import BridgeError
from fhir_bridge.fhir import matches
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Claim, Store

from ._incoming import Incoming, Page
from ._leases import LeaseKeeper, Leases, process_id
from ._merge import Policy
from ._prefetch import chunked, read_ahead
from ._server_links import ServerLinks
from ._summary import PullSummary

log = logging.getLogger("fhir_bridge.sync")
Json = dict[str, Any]
# the pulled types by dependency level: a type's references name only types of earlier
# levels (a problem, a goal, a referral, a care team), so that a new resource's references to
# new ones resolve; the types of one level are pulled ``TYPES_AT_ONCE`` at a time
PULL_LEVELS: tuple[tuple[str, ...], ...] = (
    ("Patient",),
    ("QuestionnaireResponse", "Condition", "CareTeam"),
    ("MedicationStatement", "MedicationRequest", "Goal"),
    ("ServiceRequest",),
    ("Task", "Encounter", "CarePlan"),
)
PULLED_TYPES = tuple(t for level in PULL_LEVELS for t in level)
TYPES_AT_ONCE = 2  # one type's pages applied while another's are read
# deletions on the server are not read for these: a Task's deletion leaves the referral's
# tracking, and a Patient deleted (or merged away) in the EHR stays the care manager's patient
_NO_DELETIONS = frozenset({"Task", "Patient"})
# a search the server turns down for its parameters, not for a passing reason
_SEARCH_REFUSED = (400, 403, 405, 501)


def last_updated_refusal(resource_type: str) -> str:
    """What ``store.refusals`` keeps when a type's ``_lastUpdated`` search is refused."""
    return f"{resource_type}:search-_lastUpdated"


class PullCapabilities(Protocol):
    def supports_last_updated(self, resource_type: str) -> bool: ...
    def can(self, resource_type: str | None, interaction: str) -> bool: ...


class PullServer(Protocol):
    async def capabilities(self) -> Any: ...
    def search(self, resource_type: str, params: dict[str, str]) -> AsyncIterator[Json]: ...
    def search_bundles(self, resource_type: str, params: dict[str, str]) -> AsyncIterator[Json]: ...
    def history(
        self,
        resource_type: str | None = None,
        resource_id: str | None = None,
        *,
        since: str | None = None,
        count: int | None = None,
    ) -> AsyncIterator[Json]: ...


@dataclass
class Sweep:
    """A read whose resources are not in ``_lastUpdated`` order: each managed patient's in
    turn, or a bulk export's files. No page of it moves the watermark (a later resource of
    one patient, applied, would pass over an earlier change to another, read before it); the
    read as a whole, once applied, moves it to ``since``: the server's time when the read
    began (where known), so that what changed while it ran is read again by the next pull."""

    begun: bool = False
    since: str | None = None


class Puller:
    """Pulls one connection; a crash mid-run loses nothing and applies nothing twice.

    ``server`` is the FHIR client (tests hand one built on an ``httpx.MockTransport``).
    """

    run_id: int | None = None  # the sync run of the pull under way

    def __init__(
        self,
        store: Store,
        server: PullServer,
        connection: str,
        ctx: MappingContext,
        *,
        policy: Policy = "manual",
        patient_mode: Literal["match", "create"] = "create",
        overlap: timedelta = timedelta(minutes=2),
        page_size: int = 100,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        holder: str | None = None,
        keeper: LeaseKeeper | None = None,
        lease_seconds: float = 60.0,
    ) -> None:
        self.holder = holder or process_id("pull")
        self.store = store
        self.server = server
        self.connection = connection
        self.ctx = ctx
        self.policy = policy
        self.patient_mode = patient_mode
        self.overlap = overlap
        self.page_size = page_size
        self.clock = clock
        self.leases = Leases(
            store, connection, self.holder, seconds=lease_seconds, clock=clock, keeper=keeper
        )

    async def pull(
        self, *, patient_id: str | None = None, types: tuple[str, ...] | None = None
    ) -> PullSummary:
        """Pull every type (or only ``types``: a notification's) since its watermark."""
        summary = PullSummary()
        caps = await self.server.capabilities()
        run_id = self.store.runs.start(self.connection, "pull", self.clock(), self.holder)
        self.run_id = run_id
        dead = self.leases.dead()
        wanted = [t for t in types or PULLED_TYPES if caps.can(t, "search-type")]
        gate = asyncio.Semaphore(TYPES_AT_ONCE)

        async def one(resource_type: str) -> PullSummary:
            async with gate:
                return await self._one_type(resource_type, caps, patient_id, dead)

        async with self.leases.renewing():
            for level in PULL_LEVELS:
                pulled = [t for t in level if t in wanted]
                done = await asyncio.gather(*map(one, pulled), return_exceptions=True)
                for result in done:  # every type of the level ended: its counts, or its error
                    if isinstance(result, BaseException):
                        raise result
                    summary.add(result)
        self.store.runs.finish(
            run_id, "ok" if not summary.failed else "partial", summary.counts(), self.clock()
        )
        self.run_id = None
        log.info(
            "pull finished",
            extra={"action": "pull", "connection": self.connection, "counts": summary.counts()},
        )
        return summary

    async def _one_type(
        self,
        resource_type: str,
        caps: PullCapabilities,
        patient_id: str | None,
        dead: list[str],
    ) -> PullSummary:
        """One type under its lease (one puller per connection and type at a time: the
        watermark never races); its own counts, since types of a level run side by side."""
        summary = PullSummary()
        held = self.leases.claim("pull", resource_type, dead=dead)
        if held is None:
            summary.busy += 1
            return summary
        with held:
            await self._pull_type(resource_type, caps, patient_id, summary, held.claim)
        if held.lost:  # left to the process holding the lease now
            summary.busy += 1
        return summary

    def _incoming(self) -> Incoming:
        return Incoming(
            self.store,
            self.connection,
            self.ctx,
            policy=self.policy,
            clock=self.clock,
            run_id=self.run_id,
            patient_mode=self.patient_mode,
        )

    # ------------------------------------------------------------------ finding changes

    async def _changed(
        self,
        resource_type: str,
        caps: PullCapabilities,
        managed: dict[str, str],
        sweep: Sweep,
    ) -> AsyncIterator[Json]:
        watermark = self.store.watermarks.get(self.connection, resource_type)
        refused = {r.what for r in self.store.refusals.of(self.connection)}
        if (
            watermark is not None
            and caps.supports_last_updated(resource_type)
            and last_updated_refusal(resource_type) not in refused
        ):
            since = datetime.fromisoformat(watermark.replace("Z", "+00:00")) - self.overlap
            params = {
                "_lastUpdated": f"gt{since.isoformat()}",
                "_count": str(self.page_size),
                "_sort": "_lastUpdated",
            }
            taken = 0
            try:
                async for resource in self.server.search(resource_type, params):
                    taken += 1
                    yield resource
                return
            except BridgeError as exc:
                status = getattr(exc, "status", None)
                if taken or status not in _SEARCH_REFUSED:
                    raise
                # declared, yet refused: remember it and read per patient instead
                fingerprint = getattr(caps, "fingerprint", None)
                self.store.refusals.remember(
                    self.connection,
                    last_updated_refusal(resource_type),
                    source="run-time",
                    statement=fingerprint() if callable(fingerprint) else "",
                    now=self.clock(),
                    status=status,
                    said=None,
                )
        # no watermark yet, or no _lastUpdated: read each managed patient's resources, from
        # the server's time of its first answer (the bridge's clock where it states none)
        sweep.begun, began = True, self.clock().isoformat()
        for server_patient in managed:
            params = {"patient": server_patient, "_count": str(self.page_size)}
            if resource_type == "Patient":
                params = {"_id": server_patient.removeprefix("Patient/")}
            async for bundle in self.server.search_bundles(resource_type, params):
                if sweep.since is None:
                    stated = (bundle.get("meta") or {}).get("lastUpdated")
                    sweep.since = stated if isinstance(stated, str) else began
                for resource in matches(bundle):
                    yield resource

    async def _pull_type(
        self,
        resource_type: str,
        caps: PullCapabilities,
        patient_id: str | None,
        summary: PullSummary,
        lease: Claim,
    ) -> None:
        by_server = ServerLinks(self.store.links, self.connection)
        managed = self.store.links.patients(self.connection, patient_id)
        watermark = self.store.watermarks.get(self.connection, resource_type)
        page = Page()
        if (
            watermark is not None
            and resource_type not in _NO_DELETIONS
            and caps.can(resource_type, "history-type")
        ):
            await self._deletions(resource_type, watermark, by_server, page, summary)
        sweep = Sweep()
        changed = self._changed(resource_type, caps, managed, sweep)
        page = await self._take_all(
            resource_type,
            changed,
            managed=managed,
            page=page,
            summary=summary,
            lease=lease,
            sweep=sweep,
        )
        if sweep.since is not None and patient_id is None:  # every managed patient read
            page.watermark = sweep.since
        self._apply(resource_type, page, lease)

    async def _take_all(
        self,
        resource_type: str,
        resources: AsyncIterator[Json],
        *,
        managed: dict[str, str],
        page: Page,
        summary: PullSummary,
        lease: Claim,
        sweep: Sweep,
    ) -> Page:
        """Read ``resources`` into pages, applying each full page; the page still open is
        returned. They come a chunk (the page size) at a time, the next read while one is
        applied (``_prefetch``): the chunk's links are read in one go and let go with it.
        Once a ``sweep`` has begun, no page moves the watermark (the caller sets it at the end)."""
        incoming = self._incoming()
        by_server = ServerLinks(self.store.links, self.connection)

        def take(chunk: list[Json]) -> None:
            nonlocal page
            by_server.load(chunk)
            for resource in chunk:
                incoming.take(resource, by_server, managed, page, summary)
                if sweep.begun:
                    page.watermark = None
                if len(page.records) + len(page.links) >= self.page_size:
                    self._apply(resource_type, page, lease)
                    page = Page()

        # applied in a thread, so that the next chunk's answer is read meanwhile
        async for chunk in read_ahead(chunked(resources, self.page_size)):
            await asyncio.to_thread(take, chunk)
        return page

    async def _deletions(
        self,
        resource_type: str,
        watermark: str,
        by_server: ServerLinks,
        page: Page,
        summary: PullSummary,
    ) -> None:
        """Resources deleted on the server since the watermark: their records are marked deleted."""
        since = datetime.fromisoformat(watermark.replace("Z", "+00:00")) - self.overlap
        # pages as large as the searches': the server's default (20 for HAPI) makes a history
        # of thousands of versions hundreds of requests, each slower than the last (offsets)
        history = self.server.history(resource_type, since=since.isoformat(), count=self.page_size)
        async for entry in history:
            request = entry.get("request") or {}
            if request.get("method") != "DELETE":
                continue
            parts = (
                str(request.get("url") or entry.get("fullUrl") or "")
                .split("/_history")[0]
                .split("/")
            )
            link = by_server.head(f"{resource_type}/{parts[-1]}")
            if link is None or link.kind is None or link.record_id is None:
                continue
            if (
                self.store.records.is_deleted(link.kind, link.record_id)
                or (link.kind, link.record_id) in page.deleted
            ):
                continue
            page.deleted.append((link.kind, link.record_id))
            summary.deleted += 1

    def _apply(self, resource_type: str, page: Page, lease: Claim | None) -> None:
        if page:
            self.store.apply_pull(
                self.connection,
                resource_type,
                records=page.records,
                links=page.links,
                conflicts=page.conflicts,
                watermark=page.watermark,
                now=self.clock(),
                deleted=page.deleted,
                lease=lease,
            )
