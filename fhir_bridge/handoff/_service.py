"""Handoffs as the CLI and the API make and take them, with the rules both shells follow.

Making one: build and check from the store (`prepare_handoff`), send it (`send_handoff`: with
``strict``, a package whose check found errors is refused), keep it (`record_handoff`).
Taking one: `receive_handoff` files an arriving Bundle's records under the matched patient
(an identifier match is taken; a match on name and birth date only needs a person's
confirmation; no match makes a new patient).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from fhir_bridge import model as m
from fhir_bridge.config import Settings
from fhir_bridge.errors import HandoffRefused, InputError
from fhir_bridge.store import Store
from fhir_bridge.sync import resolve_connection, routing_of

from ._check import Finding, check
from ._document import DOCUMENT_TYPES, HandoffType, as_transaction, build_document, deliver
from ._receive import match_patient, package_of, read_package, rekey


@dataclass(frozen=True)
class Handoff:
    """A built, checked package, before delivery."""

    patient_id: str
    handoff_type: HandoffType
    package: m.PatientPackage
    findings: list[Finding]
    document: dict[str, Any]
    author: str | None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]


def prepare_handoff(
    store: Store, settings: Settings, patient_id: str, handoff_type: str, now: datetime
) -> Handoff:
    """The patient's document Bundle of ``handoff_type``, with its completeness findings."""
    if handoff_type not in DOCUMENT_TYPES:
        raise InputError("type", f"{handoff_type!r} is not one of {', '.join(DOCUMENT_TYPES)}")
    kind: HandoffType = handoff_type  # type: ignore[assignment]
    records = store.records.of_patient(patient_id)
    if not records:
        raise InputError("patient_id", f"no patient {patient_id!r} in the store")
    package = package_of(records)
    author = next((p.author for p in package.care_plans if p.author), None) or m.Party(
        kind=m.PartyKind.organization, name=settings.organization
    )
    custodian = m.Party(kind=m.PartyKind.organization, id="custodian", name=settings.organization)
    ctx = settings.mapping_context(now)
    document = build_document(package, kind, ctx, author=author, custodian=custodian, now=now)
    return Handoff(patient_id, kind, package, check(package), document, author.name)


async def send_handoff(
    settings: Settings,
    handoff: Handoff,
    to: str,
    *,
    strict: bool,
    transport: httpx.AsyncBaseTransport | None = None,
) -> str:
    """Deliver ``handoff`` to ``to`` (a connection, or a FHIR URL); what happened, in words.

    The strict rule: with ``strict``, a package whose completeness check found errors is not
    sent (:class:`HandoffRefused`, carrying the findings)."""
    if strict and handoff.errors:
        findings = tuple(finding_json(f) for f in handoff.findings)
        raise HandoffRefused(len(handoff.errors), findings)
    return await deliver_handoff(settings, to, handoff.document, transport=transport)


async def deliver_handoff(
    settings: Settings,
    to: str,
    document: dict[str, Any],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> str:
    """Send the package once, as the receiver takes it: the document Bundle, or (configured,
    or when the server cannot store Bundles but runs transactions) its resources.

    ``transport`` replaces httpx's own under the FHIR client (tests hand a mock one)."""
    is_url = to.startswith(("http://", "https://"))
    target = resolve_connection(settings, None if is_url else to, to if is_url else None)
    async with target.client(transport) as client:
        caps = await client.capabilities()
        as_resources = target.config.handoff_delivery == "transaction" or (
            not caps.writable("Bundle") and caps.supports_transaction()
        )
        if as_resources:
            response = await client.transaction(as_transaction(document))
            return f"delivered as {len(response.get('entry') or [])} resources on {target.name}"
        created, bundle_id = await deliver(client, document)
    state = "delivered" if created else "already delivered"
    return f"{state}: Bundle/{bundle_id} on {target.name}"


def record_handoff(
    store: Store, handoff: Handoff, destination: str | None, delivery: str | None, now: datetime
) -> int:
    """Keep the handoff (document, findings, where it went); returns its id."""
    return store.handoffs.add(
        package_id=handoff.document["identifier"]["value"],
        patient_id=handoff.patient_id,
        handoff_type=handoff.handoff_type,
        author=handoff.author,
        destination=destination,
        findings=[finding_json(f) for f in handoff.findings],
        delivery=delivery,
        document=handoff.document,
        now=now,
    )


def finding_json(finding: Finding) -> dict[str, str | None]:
    return {
        "code": finding.code,
        "severity": finding.severity,
        "record": finding.record,
        "message": finding.message,
    }


@dataclass(frozen=True)
class Arrival:
    """An arriving handoff, read: its patient and the other records it carries."""

    source: str  # where it came from (a file, or a connection's Bundle id), for messages
    patient: m.Patient
    records: list[m.Record]


@dataclass(frozen=True)
class Received:
    """A handoff filed in the store: the patient it went to, how that patient was found."""

    patient_id: str
    records: int  # the records filed besides the patient
    how: str  # "identifier", "name and birth date (...)" or "new patient"


def read_arrival(bundle: Any, source: str, settings: Settings, now: datetime) -> Arrival:
    """The patient and records of a document or transaction Bundle read from ``source``
    (records without a last-updated time are stamped with ``now``)."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InputError(source, "expected a document or transaction Bundle")
    try:
        patient, records, _ = read_package(bundle, settings.mapping_context(now))
    except ValueError as exc:
        raise InputError(source, str(exc)) from None
    return Arrival(source, patient, records)


def receive_handoff(
    store: Store, settings: Settings, arrival: Arrival, *, confirm_match: bool, now: datetime
) -> Received:
    """File an arriving handoff's records in the store, under the matched patient.

    The matching policy: a stored patient sharing an identifier is taken; one matched on name
    and birth date only is taken when ``confirm_match`` says a person checked it, else the
    handoff is refused (InputError naming the candidate's id); without a match the handoff's
    patient is stored as a new one. The records are queued for every connection."""
    known = [
        p
        for pid in store.records.patient_ids()
        if isinstance(p := store.records.get("patient", pid), m.Patient)
    ]
    match, how = match_patient(arrival.patient, known)
    if match is not None and how != "identifier" and not confirm_match:
        raise InputError(
            arrival.source,
            f"the patient may be {match.id!r} ({how}); run again with --confirm-match "
            "to file it there, or add an identifier both sides share",
        )
    patient = arrival.patient if match is None else match
    stored = [patient] if match is None else []
    records = rekey(arrival.records, patient.id)
    store.put_records([*stored, *records], routing_of(settings), now)
    return Received(patient.id, len(records), how)


async def fetch_bundle(settings: Settings, connection: str, bundle_id: str) -> Any:
    """The Bundle ``bundle_id`` as the server of ``connection`` holds it."""
    target = resolve_connection(settings, connection, None)
    async with target.client() as client:
        return await client.read("Bundle", bundle_id)
