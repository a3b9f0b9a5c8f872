"""Patient matching, the calls: find the EHR's own Patient for one of ours (identifier,
``Patient/$match``, demographics: judged by ``_matching``), remember the decision in the store,
and link our resources to it; find directory parties (Practitioner, Organization) by their
identifiers (NPI...) before creating ours.

In match mode nothing is ever written to the EHR's Patient: push drops its write, and our
Patient's link points at the server's id, so every reference of ours resolves to it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from fhir_bridge.mappers import Entry
from fhir_bridge.store import Link, PatientMatch, Store

from ._matching import (
    Decision,
    by_demographics,
    by_identifier,
    by_match_operation,
    demographic_query,
    mrn_of,
    not_found,
)
from ._plan import Write, identifier_of

log = logging.getLogger("fhir_bridge.sync")
Json = dict[str, Any]
DIRECTORY_MATCHED = ("Practitioner", "Organization")
NPI = "http://hl7.org/fhir/sid/us-npi"


class MatchCapabilities(Protocol):
    def supports_operation(self, resource_type: str, name: str) -> bool: ...


class MatchServer(Protocol):
    """What matching needs of a FHIR client (``FhirClient`` provides it)."""

    def search(self, resource_type: str, params: dict[str, str]) -> AsyncIterator[Json]: ...
    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        resource_type: str | None = None,
        safe: bool | None = None,
    ) -> Any: ...


class Matcher:
    """Matching for one connection in ``match`` mode."""

    def __init__(
        self,
        store: Store,
        server: MatchServer,
        connection: str,
        *,
        mrn_system: str | None,
        clock: Callable[[], datetime],
        holder: str,
    ) -> None:
        self.store = store
        self.server = server
        self.connection = connection
        self.mrn_system = mrn_system
        self.clock = clock
        self.holder = holder

    async def settle(
        self, patient_id: str, mapped: Sequence[Entry], caps: MatchCapabilities, *, save: bool
    ) -> PatientMatch:
        """The patient's match on this connection: the stored decision, else a new one (kept
        when ``save``; a held one holds the patient's entries). A matched patient's link
        points at the server's Patient."""
        ours = next((e for e in mapped if e.kind == "patient" and e.record_id == patient_id), None)
        known = self.store.matches.get(self.connection, patient_id)
        if known is None and ours is not None:
            link = self.store.links.find(
                self.connection, "Patient", [identifier_of(ours.resource)]
            ).get(identifier_of(ours.resource))
            if link is not None:  # written here before matching existed: it is ours
                known = self._match(patient_id, Decision("matched", "link", link.resource_id))
                if save:
                    self.store.matches.save(known)
        if known is None:
            decision = (
                await self.find(ours.resource, caps, self._enrolled_mrn(patient_id))
                if ours is not None
                else Decision("held", "none", reason="no patient record to match")
            )
            known = self._match(patient_id, decision)
            if save:
                self.store.matches.save(known)
            log.info(
                "patient match decided",
                extra={
                    "action": "match",
                    "connection": self.connection,
                    "patient_id": patient_id,
                    "state": decision.state,
                    "step": decision.step,
                    "count": decision.candidates,
                },
            )
        elif known.state == "held" and save:
            self.store.matches.hold_entries(self.connection, patient_id, self.clock())
        if known.state == "matched" and known.server_id and ours is not None and save:
            self._link(ours, known.server_id)
        return known

    def _enrolled_mrn(self, patient_id: str) -> str | None:
        enrolment = self.store.enrolments.get(patient_id, self.connection)
        return enrolment.mrn if enrolment is not None else None

    async def find(
        self, patient: Json, caps: MatchCapabilities, enrolled_mrn: str | None = None
    ) -> Decision:
        """Identifier (the enrolment's MRN, else our patient's identifier in the connection's
        MRN system), then ``$match`` where declared, then demographics."""
        tried: list[str] = []
        mrn = (enrolled_mrn if self.mrn_system else None) or mrn_of(patient, self.mrn_system)
        if mrn is not None:
            tried.append("identifier")
            found = await self._search("Patient", {"identifier": f"{self.mrn_system}|{mrn}"})
            if (decision := by_identifier(found)) is not None:
                return decision
        if caps.supports_operation("Patient", "match"):
            tried.append("$match")
            answer = await self.server.request(
                "POST",
                "Patient/$match",
                json_body=_match_parameters(patient),
                resource_type="Patient",
                safe=True,
            )
            body = getattr(answer, "body", None)
            if isinstance(body, dict) and (decision := by_match_operation(body)) is not None:
                return decision
        query = demographic_query(patient)
        if query is None:
            return not_found([*tried, "demographics incomplete"])
        return by_demographics(patient, await self._search("Patient", query))

    async def directory(self, writes: Sequence[Write], known: dict[str, str]) -> list[Write]:
        """``writes`` without those of directory parties the EHR already has: a Practitioner
        or Organization we would create is searched by its identifiers (NPI first) and, when
        exactly one is found, linked instead; one linked that way is never written over."""
        kept = []
        for write in writes:
            if write.resource_type not in DIRECTORY_MATCHED:
                kept.append(write)
                continue
            if write.link is not None:
                if write.link.sent_json is not None:  # ours: created by us, updated as usual
                    kept.append(write)
                continue
            found = await self._party(write.entry.resource)
            if found is None:
                kept.append(write)
                continue
            self.store.links.save(
                [
                    Link(
                        self.connection,
                        write.resource_type,
                        write.identifier,
                        write.entry.kind,
                        write.entry.record_id,
                        str(found["id"]),
                        (found.get("meta") or {}).get("versionId"),
                        (found.get("meta") or {}).get("lastUpdated"),
                        write.sent_hash,
                        None,  # nothing sent: the EHR's own
                        found,
                    )
                ],
                self.clock(),
            )
            known[write.full_url] = f"{write.resource_type}/{found['id']}"
        return kept

    async def _party(self, resource: Json) -> Json | None:
        theirs = [
            i
            for i in (resource.get("identifier") or [])[:-1]  # the last one is ours
            if i.get("system") and i.get("value")
        ]
        theirs.sort(key=lambda i: i.get("system") != NPI)
        for identifier in theirs:
            query = {"identifier": f"{identifier['system']}|{identifier['value']}"}
            found = await self._search(str(resource["resourceType"]), query)
            if len(found) == 1:
                return found[0]
        return None

    async def _search(self, resource_type: str, params: dict[str, str]) -> list[Json]:
        return [r async for r in self.server.search(resource_type, {**params, "_count": "10"})]

    def _match(self, patient_id: str, decision: Decision) -> PatientMatch:
        return PatientMatch(
            self.connection,
            patient_id,
            decision.state,
            decision.server_id,
            decision.step,
            decision.reason,
            decision.candidates,
            decision.score,
            self.clock(),
            self.holder,
        )

    def _link(self, ours: Entry, server_id: str) -> None:
        identifier = identifier_of(ours.resource)
        link = self.store.links.find(self.connection, "Patient", [identifier]).get(identifier)
        if link is not None and link.resource_id == server_id:
            return
        self.store.links.save(
            [
                Link(
                    self.connection,
                    "Patient",
                    identifier,
                    "patient",
                    ours.record_id,
                    server_id,
                    None,
                    None,
                    None,
                    None,  # nothing sent: the EHR's Patient is never written
                    None,
                )
            ],
            self.clock(),
        )


def _match_parameters(patient: Json) -> Json:
    """``Patient/$match`` input: our Patient without our own identifier, certain matches only."""
    resource = {k: v for k, v in patient.items() if k not in ("id", "meta", "text")}
    resource["identifier"] = (patient.get("identifier") or [])[:-1] or None
    resource = {k: v for k, v in resource.items() if v is not None}
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": resource},
            {"name": "onlyCertainMatches", "valueBoolean": True},
            {"name": "count", "valueInteger": 5},
        ],
    }
