"""A handoff as the CLI and the API make one: build and check from the store, deliver, record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir_bridge import model as m
from fhir_bridge.config import Settings
from fhir_bridge.errors import InputError
from fhir_bridge.store import Store
from fhir_bridge.sync import resolve_connection

from ._check import Finding, check
from ._document import DOCUMENT_TYPES, HandoffType, as_transaction, build_document, deliver
from ._receive import package_of


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


async def deliver_handoff(settings: Settings, to: str, document: dict[str, Any]) -> str:
    """Send the package once, as the receiver takes it: the document Bundle, or (configured,
    or when the server cannot store Bundles but runs transactions) its resources."""
    is_url = to.startswith(("http://", "https://"))
    target = resolve_connection(settings, None if is_url else to, to if is_url else None)
    async with target.client() as client:
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


def finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "code": finding.code,
        "severity": finding.severity,
        "record": finding.record,
        "message": finding.message,
    }
