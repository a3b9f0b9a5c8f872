"""A care plan as a clinical note: a US Core DocumentReference "Plan of care note".

EHRs that keep CarePlan or Goal read-only through their FHIR API (Epic, Oracle Health) still
take clinical notes as DocumentReference writes. This renders one patient's plan (its
narrative, its goals' and its activities') as one note per plan, keyed by our identifier
(``<namespace>/careplan_note``, the plan's id) so a changed plan updates the same note
instead of adding another. Pure: it reads the resources already rendered for the plan.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from html import escape

from ._common import US_CORE
from ._context import MappingContext
from ._datatypes import Json
from ._narrative import XHTML
from ._translate import Entry

NOTE_KIND = "careplan_note"
LOINC_PLAN_OF_CARE = {
    "system": "http://loinc.org",
    "code": "18776-5",
    "display": "Plan of care note",
}
CLINICAL_NOTE = {
    "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
    "code": "clinical-note",
    "display": "Clinical Note",
}
MIME_SUFFICIENT = {
    "system": "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode",
    "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient",
    "display": "mimeType Sufficient",
}
_OUTER_DIV = re.compile(r"^<div[^>]*>(?P<inner>.*)</div>$", re.DOTALL)


def plan_note_entries(ctx: MappingContext, entries: Sequence[Entry]) -> list[Entry]:
    """One plan-of-care note per CarePlan among ``entries`` (the patient's rendered
    resources): the plan's narrative, then each of its goals' and activities'."""
    by_url = {e.full_url: e.resource for e in entries}
    return [
        Entry(
            ctx.full_url(NOTE_KIND, e.record_id),
            plan_note(ctx, e.record_id, e.resource, by_url),
            e.kind,
            e.record_id,
        )
        for e in entries
        if e.resource.get("resourceType") == "CarePlan"
    ]


def plan_note(ctx: MappingContext, plan_id: str, plan: Json, by_url: dict[str, Json]) -> Json:
    """The DocumentReference of one rendered CarePlan (``by_url``: the resources its
    references name, by fullUrl)."""
    goals = [
        by_url[ref["reference"]]
        for ref in plan.get("goal") or []
        if isinstance(ref, dict) and ref.get("reference") in by_url
    ]
    sections = [_inner(plan)] + [_inner(g) for g in goals]
    activities = [text for a in plan.get("activity") or [] if (text := _activity_text(a))]
    if activities:
        items = "".join(f"<li>{escape(t)}</li>" for t in activities)
        sections.append(f"<p><b>Activities</b></p><ul>{items}</ul>")
    body = f'<div xmlns="{XHTML}">{"".join(sections)}</div>'
    title = str(plan.get("title") or "Plan of care")
    dates = [str(u) for r in [plan, *goals] if (u := (r.get("meta") or {}).get("lastUpdated"))]
    note: Json = {
        "resourceType": "DocumentReference",
        "meta": {"profile": [US_CORE + "us-core-documentreference"]},
        "identifier": [ctx.identifier(NOTE_KIND, plan_id)],
        "status": "current",
        "type": {"coding": [LOINC_PLAN_OF_CARE], "text": "Plan of care note"},
        "category": [{"coding": [CLINICAL_NOTE]}],
        "subject": plan["subject"],
        "description": title,
        "content": [
            {
                "attachment": {
                    "contentType": "text/html",
                    "data": base64.b64encode(body.encode()).decode(),
                    "title": title,
                },
                "format": MIME_SUFFICIENT,
            }
        ],
        "text": {"status": "generated", "div": body},
    }
    if dates:
        note["date"] = max(dates)
        note["meta"]["lastUpdated"] = max(dates)
    if isinstance(plan.get("author"), dict):
        note["author"] = [plan["author"]]
    if isinstance(plan.get("period"), dict):
        note["context"] = {"period": plan["period"]}
    return note


def _inner(resource: Json) -> str:
    div = str((resource.get("text") or {}).get("div") or "")
    match = _OUTER_DIV.match(div.strip())
    return match.group("inner") if match else ""


def _activity_text(activity: Json) -> str | None:
    detail = activity.get("detail") or {}
    code = detail.get("code") or {}
    for text in (
        detail.get("description"),
        code.get("text"),
        *(c.get("display") for c in code.get("coding") or []),
        (activity.get("reference") or {}).get("display"),
    ):
        if text:
            return str(text)
    return None
