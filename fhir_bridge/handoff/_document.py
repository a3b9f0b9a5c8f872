"""The handoff package: a FHIR R4 document Bundle (Composition first) and its sections."""

from __future__ import annotations

import html
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any, Literal, Protocol

from fhir_bridge import model as m
from fhir_bridge.mappers import Entry, MappingContext, party_entries, party_reference, to_entries

Json = dict[str, Any]
HandoffType = Literal["transfer", "referral", "summary"]
LOINC = "http://loinc.org"
DOCUMENT_TYPES: dict[str, tuple[str, str]] = {
    "transfer": ("18761-7", "Transfer summary note"),
    "referral": ("57133-1", "Referral note"),
    "summary": ("34133-9", "Summary of episode note"),
}
HANDOFF_SYSTEM = "handoff"


@dataclass(frozen=True)
class Section:
    title: str
    code: str
    display: str
    resource_types: tuple[str, ...]
    empty: str  # the narrative when nothing is known


SECTIONS = (
    Section("Plan of care", "18776-5", "Plan of care note", ("CarePlan",), "No care plan."),
    Section("Goals", "61146-7", "Goals", ("Goal",), "No goals recorded."),
    Section(
        "Problems and health concerns",
        "11450-4",
        "Problem list - Reported",
        ("Condition",),
        "No problems recorded.",
    ),
    Section(
        "Reason for referral and open referrals",
        "42349-1",
        "Reason for referral (narrative)",
        ("ServiceRequest", "Task"),
        "No referrals.",
    ),
    Section(
        "Medications",
        "10160-0",
        "History of Medication use Narrative",
        ("MedicationStatement", "MedicationRequest"),
        "No medication list was recorded.",
    ),
    Section(
        "Allergies",
        "48765-2",
        "Allergies and adverse reactions Document",
        (),
        "Allergies are not held by the care-management record; ask the patient's primary care.",
    ),
    Section("Social needs", "29762-2", "Social history Narrative", (), "No social needs recorded."),
    Section(
        "Care team",
        "85847-2",
        "Patient Care team information",
        ("CareTeam",),
        "No care team recorded.",
    ),
    Section(
        "Encounters",
        "46240-8",
        "History of Hospitalizations+Outpatient visits Narrative",
        ("Encounter",),
        "No encounters recorded.",
    ),
)


def package_id(ctx: MappingContext, patient_id: str, handoff_type: str, now: datetime) -> str:
    """Stable for the same patient, type and moment: sending twice is recognised."""
    return str(
        uuid.uuid5(
            uuid.NAMESPACE_URL,
            f"{ctx.namespace}/handoff/{patient_id}/{handoff_type}/{now.isoformat()}",
        )
    )


def build_document(
    package: m.PatientPackage,
    handoff_type: HandoffType,
    ctx: MappingContext,
    *,
    author: m.Party,
    custodian: m.Party,
    now: datetime,
) -> Json:
    """The document Bundle: Composition, then every resource of the package it references."""
    entries = to_entries([*package.records()], ctx)
    known = {e.full_url for e in entries}
    entries += [e for e in party_entries(ctx, [author, custodian]) if e.full_url not in known]
    _keep_inside([e.resource for e in entries], {e.full_url for e in entries})
    composition_id = package_id(ctx, package.patient.id, handoff_type, now)
    composition = _composition(
        package, handoff_type, ctx, entries=entries, author=author, custodian=custodian, now=now
    )
    return {
        "resourceType": "Bundle",
        "identifier": {"system": ctx.system(HANDOFF_SYSTEM), "value": composition_id},
        "type": "document",
        "timestamp": _instant(now),
        "entry": [
            {"fullUrl": f"urn:uuid:{composition_id}", "resource": composition},
            *({"fullUrl": e.full_url, "resource": e.resource} for e in entries),
        ],
    }


def _keep_inside(resources: list[Json], inside: set[str]) -> None:
    """A document is self-contained: a reference to a resource it does not carry becomes text
    (``display``), so the receiver still reads what it pointed at."""
    stack: list[Any] = list(resources)
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            target = node.get("reference")
            if isinstance(target, str) and target not in inside and not target.startswith("#"):
                del node["reference"]
                node.setdefault("display", target)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _instant(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _composition(
    package: m.PatientPackage,
    handoff_type: HandoffType,
    ctx: MappingContext,
    *,
    entries: list[Entry],
    author: m.Party,
    custodian: m.Party,
    now: datetime,
) -> Json:
    code, display = DOCUMENT_TYPES[handoff_type]
    patient_url = ctx.full_url("patient", package.patient.id)
    sections = []
    social = [
        e for e in entries if e.resource["resourceType"] == "Condition" and _is_sdoh(e.resource)
    ]
    for section in SECTIONS:
        chosen = (
            social
            if section.code == "29762-2"
            else [e for e in entries if e.resource["resourceType"] in section.resource_types]
        )
        lines = [_line(e.resource) for e in chosen]
        div = (
            "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ul>"
            if lines
            else f"<p>{escape(section.empty)}</p>"
        )
        item: Json = {
            "title": section.title,
            "code": {
                "coding": [{"system": LOINC, "code": section.code, "display": section.display}]
            },
            "text": {
                "status": "generated",
                "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{div}</div>',
            },
        }
        if chosen:
            item["entry"] = [{"reference": e.full_url} for e in chosen]
        else:
            item["emptyReason"] = {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
                        "code": "unavailable" if section.code == "48765-2" else "nilknown",
                    }
                ]
            }
        sections.append(item)
    name = package.patient.names[0].display() if package.patient.names else package.patient.id
    title = f"{display}: {name}"
    return {
        "resourceType": "Composition",
        "text": {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{escape(title)}</p></div>',
        },
        "identifier": {
            "system": ctx.system(HANDOFF_SYSTEM),
            "value": package_id(ctx, package.patient.id, handoff_type, now),
        },
        "status": "final",
        "type": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "subject": {"reference": patient_url},
        "date": _instant(now),
        "author": [party_reference(ctx, author)],
        "title": title,
        "custodian": party_reference(ctx, custodian),
        "section": sections,
    }


def _is_sdoh(resource: Json) -> bool:
    return any(
        c.get("code") == "sdoh"
        for cat in resource.get("category", [])
        for c in cat.get("coding", [])
    )


def _line(resource: Json) -> str:
    """One human line per resource for the section narrative."""
    rtype = resource["resourceType"]
    # the generated narrative holds a table; its cells, joined, make a readable line
    cells = re.findall(r"<td>(.*?)</td>", resource.get("text", {}).get("div", ""))
    return f"{rtype}: " + "; ".join(html.unescape(c) for c in cells) if cells else rtype


class Deliverer(Protocol):
    async def create(self, resource: Json, if_none_exist: str | None = None) -> Any: ...


async def deliver(server: Deliverer, document: Json) -> tuple[bool, str | None]:
    """POST the document Bundle once: sending the same package again finds the first copy.

    Returns (created now, server id).
    """
    identifier = document["identifier"]
    result = await server.create(
        document, if_none_exist=f"identifier={identifier['system']}|{identifier['value']}"
    )
    return bool(result.created), result.id


def as_transaction(document: Json) -> Json:
    """The same package as a transaction that creates (or updates) each resource.

    For receivers that keep resources rather than documents: every entry is a conditional
    update on its own identifier, so sending it twice changes nothing the second time.
    """
    entries = []
    for entry in document["entry"]:
        resource = entry["resource"]
        identifiers = resource.get("identifier")
        own = identifiers[-1] if isinstance(identifiers, list) else identifiers
        url = f"{resource['resourceType']}?identifier={own['system']}|{own['value']}"
        entries.append(
            {
                "fullUrl": entry["fullUrl"],
                "resource": resource,
                "request": {"method": "PUT", "url": url},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
