"""Pull: bring what clinicians changed in the EHR back into the care manager's records.

Per resource type (CarePlan, Goal, ServiceRequest, Task): find what changed since the
watermark (``_lastUpdated`` where the server declares it, else re-read each managed patient's
resources and compare them with what was last seen), skip what the bridge itself wrote, read
the rest into internal records, merge them three-way with the local record against the last
synced version, and apply each page with its watermark in one transaction.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import TypeAdapter, ValidationError

from fhir_bridge import model as m
from fhir_bridge.errors import LeaseLost, MappingError
from fhir_bridge.mappers import MappingContext, from_fhir, resources_of
from fhir_bridge.store import Claim, Link, NewConflict, Store, content_hash

from ._leases import LeaseKeeper, dead_holders, kept, process_id
from ._merge import Policy, three_way
from ._plan import references, rendering_hash
from ._summary import int_fields

log = logging.getLogger("fhir_bridge.sync")
Json = dict[str, Any]
PULLED_TYPES = ("CarePlan", "Goal", "ServiceRequest", "Task")
_RECORD = TypeAdapter(m.AnyRecord)
_SUBJECT = {"Task": "for"}


class PullCapabilities(Protocol):
    def supports_last_updated(self, resource_type: str) -> bool: ...
    def can(self, resource_type: str | None, interaction: str) -> bool: ...


class PullServer(Protocol):
    async def capabilities(self) -> Any: ...
    def search(self, resource_type: str, params: dict[str, str]) -> AsyncIterator[Json]: ...
    def history(
        self,
        resource_type: str | None = None,
        resource_id: str | None = None,
        *,
        since: str | None = None,
        count: int | None = None,
    ) -> AsyncIterator[Json]: ...


@dataclass
class PullSummary:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    conflicts: int = 0
    deleted: int = 0
    skipped: int = 0
    failed: int = 0
    busy: int = 0  # resource types another worker was pulling: left to it
    problems: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return int_fields(self)


@dataclass
class _Page:
    records: list[tuple[m.Record, bool]] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    conflicts: list[NewConflict] = field(default_factory=list)
    deleted: list[tuple[str, str]] = field(default_factory=list)
    watermark: str | None = None


class Puller:
    """Pulls one connection; a crash mid-run loses nothing and applies nothing twice."""

    run_id: int | None = None  # the sync run of the pull under way
    _claim: Claim | None = None  # the lease on the watermark of the type being pulled

    def __init__(
        self,
        store: Store,
        server: PullServer,
        connection: str,
        ctx: MappingContext,
        *,
        policy: Policy = "manual",
        overlap: timedelta = timedelta(minutes=2),
        page_size: int = 100,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        holder: str | None = None,
        keeper: LeaseKeeper | None = None,
        lease_seconds: float = 60.0,
    ) -> None:
        self.holder = holder or process_id("pull")
        self.keeper = keeper
        self.lease_seconds = lease_seconds
        self.store = store
        self.server = server
        self.connection = connection
        self.ctx = ctx
        self.policy = policy
        self.overlap = overlap
        self.page_size = page_size
        self.clock = clock

    async def pull(self, *, patient_id: str | None = None) -> PullSummary:
        summary = PullSummary()
        caps = await self.server.capabilities()
        run_id = self.store.runs.start(self.connection, "pull", self.clock(), self.holder)
        self.run_id = run_id
        dead = dead_holders(self.store)
        async with kept(self.keeper, self.store, self.lease_seconds, self.clock) as keeper:
            for resource_type in PULLED_TYPES:
                # one puller per connection and type at a time: the watermark never races
                claim = self.store.leases.claim(
                    self.connection,
                    "pull",
                    resource_type,
                    holder=self.holder,
                    now=self.clock(),
                    seconds=self.lease_seconds,
                    dead=dead,
                )
                if claim is None:
                    summary.busy += 1
                    continue
                with keeper.holding(claim):
                    self._claim = claim
                    try:
                        await self._pull_type(resource_type, caps, patient_id, summary)
                    except LeaseLost:
                        summary.busy += 1
                        log.warning(
                            "lease lost: pull of this type left to the worker holding it",
                            extra={"action": "pull.lease_lost", "connection": self.connection},
                        )
                    finally:
                        self._claim = None
        self.store.runs.finish(
            run_id, "ok" if not summary.failed else "partial", summary.counts(), self.clock()
        )
        self.run_id = None
        log.info(
            "pull finished",
            extra={"action": "pull", "connection": self.connection, **summary.counts()},
        )
        return summary

    async def apply(self, resources: list[Json]) -> PullSummary:
        """A targeted pull: apply resources the server just told us about (a notification).

        The watermark is left alone, so the next periodic pull still reads everything
        changed since the last one: notifications speed things up, polling stays the net.
        """
        summary = PullSummary()
        by_server = self.store.links.by_server_id(self.connection)
        managed = self._managed(by_server, None)
        for resource_type in PULLED_TYPES:
            page = _Page()
            for resource in resources:
                if resource.get("resourceType") == resource_type:
                    self._take(resource, by_server, managed, page, summary)
            page.watermark = None
            self._apply(resource_type, page)
        return summary

    # ------------------------------------------------------------------ finding changes

    def _managed(self, by_server: dict[str, Link], patient_id: str | None) -> dict[str, str]:
        """Server ``Patient/id`` -> internal patient id, for the patients synced here."""
        return {
            key: link.record_id
            for key, link in by_server.items()
            if link.resource_type == "Patient"
            and link.record_id
            and (patient_id is None or link.record_id == patient_id)
        }

    async def _changed(
        self, resource_type: str, caps: PullCapabilities, managed: dict[str, str]
    ) -> AsyncIterator[Json]:
        watermark = self.store.watermarks.get(self.connection, resource_type)
        if watermark is not None and caps.supports_last_updated(resource_type):
            since = datetime.fromisoformat(watermark.replace("Z", "+00:00")) - self.overlap
            params = {
                "_lastUpdated": f"gt{since.isoformat()}",
                "_count": str(self.page_size),
                "_sort": "_lastUpdated",
            }
            async for resource in self.server.search(resource_type, params):
                yield resource
            return
        # no watermark yet, or no _lastUpdated: read each managed patient's resources
        for server_patient in managed:
            params = {"patient": server_patient, "_count": str(self.page_size)}
            async for resource in self.server.search(resource_type, params):
                yield resource

    async def _pull_type(
        self,
        resource_type: str,
        caps: PullCapabilities,
        patient_id: str | None,
        summary: PullSummary,
    ) -> None:
        by_server = self.store.links.by_server_id(self.connection)
        managed = self._managed(by_server, patient_id)
        watermark = self.store.watermarks.get(self.connection, resource_type)
        page = _Page()
        if (
            watermark is not None
            and resource_type != "Task"
            and caps.can(resource_type, "history-type")
        ):
            await self._deletions(resource_type, watermark, by_server, page, summary)
        async for resource in self._changed(resource_type, caps, managed):
            self._take(resource, by_server, managed, page, summary)
            if len(page.records) + len(page.links) >= self.page_size:
                self._apply(resource_type, page)
                page = _Page()
        self._apply(resource_type, page)

    async def _deletions(
        self,
        resource_type: str,
        watermark: str,
        by_server: dict[str, Link],
        page: _Page,
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
            link = by_server.get(f"{resource_type}/{parts[-1]}")
            if link is None or link.kind is None or link.record_id is None:
                continue
            if (
                self.store.records.is_deleted(link.kind, link.record_id)
                or (link.kind, link.record_id) in page.deleted
            ):
                continue
            page.deleted.append((link.kind, link.record_id))
            summary.deleted += 1

    def _apply(self, resource_type: str, page: _Page) -> None:
        if page.records or page.links or page.conflicts or page.watermark or page.deleted:
            self.store.apply_pull(
                self.connection,
                resource_type,
                records=page.records,
                links=page.links,
                conflicts=page.conflicts,
                watermark=page.watermark,
                now=self.clock(),
                deleted=page.deleted,
                lease=self._claim,
            )

    # ------------------------------------------------------------------ one resource

    def _take(
        self,
        resource: Json,
        by_server: dict[str, Link],
        managed: dict[str, str],
        page: _Page,
        summary: PullSummary,
    ) -> None:
        resource_type = str(resource.get("resourceType"))
        meta = resource.get("meta") or {}
        last_updated = meta.get("lastUpdated")
        if isinstance(last_updated, str) and (
            page.watermark is None or last_updated > page.watermark
        ):
            page.watermark = last_updated
        subject = (resource.get(_SUBJECT.get(resource_type, "subject")) or {}).get("reference")
        if subject not in managed:
            summary.skipped += 1
            return
        key = f"{resource_type}/{resource.get('id')}"
        link = by_server.get(key)
        if link is not None and link.version_id == meta.get("versionId"):
            summary.unchanged += 1  # written by us, or already pulled
            return
        if link is not None and link.server_json is not None and _same(link.server_json, resource):
            summary.unchanged += 1
            return
        try:
            remote = self._read(resource, by_server)
        except MappingError as exc:
            summary.failed += 1
            summary.problems.append(f"{key}: {exc}")
            return
        if isinstance(remote, m.ReferralTask) and remote.referral.id is not None:
            referral = self.store.records.get("referral", remote.referral.id)
            if isinstance(referral, m.Referral):
                remote = referral.model_copy(update={"tracking": remote.tracking})
        local = self.store.records.get(remote.kind, remote.id)
        record: m.Record = remote
        push_back = False
        if local is None:
            record = remote.model_copy(update={"source": f"ehr:{self.connection}"})
            summary.new += 1
        else:
            merged, push_back = self._merge(
                resource,
                link=link,
                local=local,
                remote=remote,
                by_server=by_server,
                page=page,
                summary=summary,
            )
            if merged is None:
                summary.unchanged += 1
            record = merged or local
        page.records.append((record, push_back))
        page.links.append(self._link(resource, record, link))

    def _read(self, resource: Json, by_server: dict[str, Link]) -> m.Record:
        result = from_fhir([(self._our_references(resource, by_server), None)], self.ctx)
        (record,) = result.records
        return record

    def _our_references(self, resource: Json, by_server: dict[str, Link]) -> Json:
        """``resource`` with references to resources we know pointing at our records."""
        out = copy.deepcopy(resource)
        for ref in references(out):
            link = by_server.get(ref["reference"])
            if link is None:
                continue
            system, _, value = link.identifier.rpartition("|")
            kind = self.ctx.kind_of_system(system)
            if kind is None:
                continue
            ref["reference"] = self.ctx.full_url(kind, value)
            ref["identifier"] = {"system": system, "value": value}
        return out

    def _merge(
        self,
        resource: Json,
        *,
        link: Link | None,
        local: m.Record,
        remote: m.Record,
        by_server: dict[str, Link],
        page: _Page,
        summary: PullSummary,
    ) -> tuple[m.Record | None, bool]:
        local_data = local.model_dump(mode="json", exclude_none=True)
        remote_data = remote.model_dump(mode="json", exclude_none=True)
        if remote.kind == "referral" and resource["resourceType"] == "ServiceRequest":
            # tracking lives in the Task; a ServiceRequest says nothing about it
            remote_data["tracking"] = local_data.get("tracking")
            remote_data = {k: v for k, v in remote_data.items() if v is not None}
        base_data = self._base(link, by_server, local)
        result = three_way(base_data, local_data, remote_data, self.policy)
        if not (result.changed_remotely or result.conflicts or result.overruled):
            return None, False
        if result.changed_remotely or result.overruled:
            result.merged["updated_at"] = max(local_data["updated_at"], remote_data["updated_at"])
        for decided in result.overruled:
            log.info(
                "automatic merge decision",
                extra={
                    "action": "merge",
                    "connection": self.connection,
                    "kind": local.kind,
                    "record_id": local.id,
                    "field": decided.field,
                    "policy": self.policy,
                },
            )
            if self.run_id is not None:  # the losing value goes to the sync log, not the logs
                lost = decided.remote if self.policy == "local-wins" else decided.local
                self.store.log.add(
                    self.run_id,
                    self.clock(),
                    str(resource["resourceType"]),
                    f"{local.kind}/{local.id}",
                    "overruled",
                    detail=f"{decided.field}: {self.policy}; dropped {json.dumps(lost)}",
                )
        if result.conflicts:
            summary.conflicts += 1
            page.conflicts.append(
                NewConflict(
                    kind=local.kind,
                    record_id=local.id,
                    fields=[c.field for c in result.conflicts],
                    base=base_data,
                    local=local_data,
                    remote=remote_data,
                )
            )
        try:
            merged = _RECORD.validate_python(result.merged)
        except ValidationError as exc:
            summary.failed += 1
            summary.problems.append(f"{local.kind}/{local.id}: merge result invalid: {exc}")
            return None, False
        summary.updated += 1
        push_back = bool(result.changed_locally) or (
            self.policy == "local-wins" and bool(result.overruled)
        )
        return merged, push_back

    def _base(self, link: Link | None, by_server: dict[str, Link], local: m.Record) -> Json | None:
        """The record as of the last sync: the server copy we last saw, read back."""
        if link is None or link.server_json is None:
            return None
        try:
            base = self._read(link.server_json, by_server)
        except (MappingError, ValueError):
            return None
        data = base.model_dump(mode="json", exclude_none=True)
        if isinstance(local, m.Referral):
            data["tracking"] = local.model_dump(mode="json", exclude_none=True).get("tracking")
        return {k: v for k, v in data.items() if v is not None}

    def _link(self, resource: Json, record: m.Record, old: Link | None) -> Link:
        resource_type = str(resource["resourceType"])
        kind = "referral_task" if resource_type == "Task" else record.kind
        identifier = f"{self.ctx.system(kind)}|{record.id}"
        rendered = next(
            (
                r.resource
                for r in resources_of(self.ctx, record)
                if r.resource["resourceType"] == resource_type
            ),
            None,
        )
        meta = resource.get("meta") or {}
        return Link(
            self.connection,
            resource_type,
            old.identifier if old else identifier,
            record.kind,
            record.id,
            str(resource["id"]),
            meta.get("versionId"),
            meta.get("lastUpdated"),
            rendering_hash(rendered) if rendered else (old.sent_hash if old else None),
            rendered,
            resource,
        )


def _same(seen: Json, resource: Json) -> bool:
    """Same content as the copy last seen (for servers whose versions we cannot trust)."""

    def strip(r: Json) -> Json:
        return {k: v for k, v in r.items() if k not in ("meta", "text")}

    return content_hash(strip(seen)) == content_hash(strip(resource))
