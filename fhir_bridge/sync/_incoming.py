"""Pull, one resource at a time: skip echoes, read it back, merge it with the local record.

A resource the bridge itself wrote (or already pulled) is recognised by its version in the
link and skipped. Others are read with ``mappers.from_fhir`` (references to resources we know
pointed back at our records) and merged three ways (``_merge``) against the server copy of
the last sync; what comes out goes into a :class:`Page` that the puller applies in one
transaction with its watermark.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from fhir_bridge import model as m
from fhir_bridge.errors import MappingError
from fhir_bridge.mappers import IMPORTED_TYPES, MappingContext, from_fhir, resources_of
from fhir_bridge.store import Link, NewConflict, Store, content_hash

from ._demographics import owned_from
from ._discharges import recorded_here, start_transitional_care
from ._incoming_tasks import take_task
from ._merge import Policy, three_way
from ._parties import with_local_parties
from ._plan import references, rendering_hash
from ._screenings import with_local_findings
from ._server_links import LinkLookup
from ._summary import PullSummary

log = logging.getLogger("fhir_bridge.sync")
Json = dict[str, Any]
_RECORD = TypeAdapter(m.AnyRecord)
_SUBJECT = {"Task": "for"}


@dataclass
class Page:
    """Changes read from the server, applied together with the watermark they reach."""

    records: list[tuple[m.Record, bool]] = field(default_factory=list)  # (record, push back)
    links: list[Link] = field(default_factory=list)
    conflicts: list[NewConflict] = field(default_factory=list)
    deleted: list[tuple[str, str]] = field(default_factory=list)
    watermark: str | None = None

    def __bool__(self) -> bool:
        return bool(self.records or self.links or self.conflicts or self.watermark or self.deleted)


class Incoming:
    """Reads server resources of one connection into pages of changes to the records.

    ``run_id``, when given, is the sync run whose log keeps what automatic merges dropped.
    """

    def __init__(
        self,
        store: Store,
        connection: str,
        ctx: MappingContext,
        *,
        policy: Policy,
        clock: Callable[[], datetime],
        run_id: int | None = None,
        patient_mode: Literal["match", "create"] = "create",
    ) -> None:
        self.patient_mode = patient_mode
        self.store = store
        self.connection = connection
        self.ctx = ctx
        self.policy = policy
        self.clock = clock
        self.run_id = run_id

    def take(
        self,
        resource: Json,
        by_server: LinkLookup,
        managed: dict[str, str],
        page: Page,
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
        if resource_type == "Patient":  # a managed patient's own Patient: its demographics
            subject = f"Patient/{resource.get('id')}"
        if subject not in managed:
            summary.skipped += 1
            return
        if resource_type == "Encounter" and not recorded_here(self.store, self.ctx, resource):
            # a discharge starts transitional care once, whatever else becomes of the Encounter
            now = self.clock()
            if start_transitional_care(
                self.store, self.connection, resource, managed[subject], now
            ):
                summary.transitions += 1
            if resource_type not in IMPORTED_TYPES:  # not a record of ours (yet)
                summary.skipped += 1
                return
        key = f"{resource_type}/{resource.get('id')}"
        head = by_server.head(key)
        # a matched Patient was never written by us: its demographics are compared with ours
        # (the merge finds no change when they agree), not skipped as an echo
        matched = resource_type == "Patient" and self.patient_mode == "match"
        if not matched and head is not None and head.version_id == meta.get("versionId"):
            summary.unchanged += 1  # written by us, or already pulled
            return
        link = by_server.get(key) if head is not None else None
        if (
            not matched
            and link is not None
            and link.server_json is not None
            and _same(link.server_json, resource)
        ):
            summary.unchanged += 1
            return
        try:
            remote = self._read(resource, by_server)
        except MappingError as exc:
            summary.failed += 1
            summary.problems.append(f"{key}: {exc}")
            return
        if link is not None and link.record_id and remote.id != link.record_id:
            # the server's resource we know as one of ours (an EHR's matched Patient has none
            # of our identifiers): read as that record
            remote = remote.model_copy(update={"id": link.record_id})
        if isinstance(remote, m.ReferralTask) and remote.referral.id is not None:
            referral = self.store.records.get("referral", remote.referral.id)
            if isinstance(referral, m.Referral):
                take_task(
                    self,
                    resource,
                    remote,
                    referral,
                    link=link,
                    by_server=by_server,
                    page=page,
                    summary=summary,
                )
                return
        self._take_record(
            resource, remote, link=link, by_server=by_server, page=page, summary=summary
        )

    def _take_record(
        self,
        resource: Json,
        remote: m.Record,
        *,
        link: Link | None,
        by_server: LinkLookup,
        page: Page,
        summary: PullSummary,
    ) -> None:
        """A record read from the server: new, or merged with ours; its link noted."""
        local = self.store.records.get(remote.kind, remote.id)
        if local is None and (isinstance(remote, m.Patient) or self._deleted_here(remote)):
            summary.skipped += 1  # pull never creates a patient, nor brings a deleted one back
            return
        record: m.Record = remote
        push_back = False
        conflicts_before = len(page.conflicts)
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
        # the link remembers what the server holds: local changes merged in, and local values
        # kept in a conflict, are not there yet, so the next push (for a conflict: once it is
        # resolved) sees them changed and writes them
        on_server_only = push_back or len(page.conflicts) > conflicts_before
        page.links.append(self.link_of(resource, remote if on_server_only else record, link))

    def _deleted_here(self, remote: m.Record) -> bool:
        """A record deleted here stays deleted whatever the EHR's copy says (its deletion on
        its way there, or sent and entered in error since); a deleted referral's Task too; and
        a record of a patient deleted here is not brought in (a clinician's new one)."""
        deleted = self.store.records.is_deleted
        if deleted(remote.kind, remote.id):
            return True
        referral = remote.referral.id if isinstance(remote, m.ReferralTask) else None
        if referral is not None and deleted("referral", referral):
            return True
        patient = remote.patient.id if isinstance(remote, m.PatientRecord) else None
        return patient is not None and deleted("patient", patient)

    def read_back(self, resource: Json, by_server: LinkLookup) -> m.Record:
        """A server resource read as our record, references to resources we know pointed
        back at our records (``MappingError`` when it cannot be read)."""
        return self._read(resource, by_server)

    def _read(self, resource: Json, by_server: LinkLookup) -> m.Record:
        result = from_fhir([(self._our_references(resource, by_server), None)], self.ctx)
        (record,) = result.records
        return record

    def _our_references(self, resource: Json, by_server: LinkLookup) -> Json:
        """``resource`` with references to resources we know pointing at our records."""
        out = copy.deepcopy(resource)
        for ref in references(out):
            link = by_server.head(ref["reference"])
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
        by_server: LinkLookup,
        page: Page,
        summary: PullSummary,
    ) -> tuple[m.Record | None, bool]:
        local_data = local.model_dump(mode="json", exclude_none=True)
        remote_data = remote.model_dump(mode="json", exclude_none=True)
        if remote.kind == "referral" and resource["resourceType"] == "ServiceRequest":
            # tracking lives in the Task; a ServiceRequest says nothing about it
            remote_data["tracking"] = local_data.get("tracking")
            remote_data = {k: v for k, v in remote_data.items() if v is not None}
        base_data = self._base(link, by_server, local)
        if isinstance(local, m.Screening):  # domains and findings are the Observations'
            remote_data = with_local_findings(remote_data, local_data)
            if base_data is not None:
                base_data = with_local_findings(base_data, local_data)
        remote_data = with_local_parties(remote_data, local_data)
        if base_data is not None:
            base_data = with_local_parties(base_data, local_data)
        if isinstance(local, m.Patient):  # only the demographics the EHR owns are taken
            remote_data = {
                **owned_from(remote_data, local_data),
                "updated_at": remote_data["updated_at"],
            }
            base_data = owned_from(base_data, local_data) if base_data is not None else None
            if self.patient_mode == "match":  # the EHR's Patient is the truth: no conflict
                base_data = None
        result = three_way(base_data, local_data, remote_data, self.policy)
        if not (result.changed_remotely or result.conflicts or result.overruled):
            return None, False
        if result.changed_remotely or result.overruled:
            result.merged["updated_at"] = max(local_data["updated_at"], remote_data["updated_at"])
        for decided in result.overruled:
            self.log_decision(local.kind, local.id, decided.field)
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
        if isinstance(local, m.Patient) and self.patient_mode == "match":
            push_back = False  # never written to a match connection
        return merged, push_back

    def _base(self, link: Link | None, by_server: LinkLookup, local: m.Record) -> Json | None:
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

    def log_decision(self, kind: str, record_id: str, element: str) -> None:
        """An automatic merge decided ``element`` of a record by the connection's policy."""
        log.info(
            "automatic merge decision",
            extra={
                "action": "merge",
                "connection": self.connection,
                "kind": kind,
                "record_id": record_id,
                "field": element,
                "policy": self.policy,
            },
        )

    def link_of(self, resource: Json, record: m.Record, old: Link | None) -> Link:
        """The link a pulled resource leaves: its server id and version, our rendering of
        ``record`` and its hash, and the server's copy."""
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
