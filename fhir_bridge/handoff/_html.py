"""A printable HTML summary of a handoff package, for the receiving nurse."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from fhir_bridge import model as m

from ._check import Finding
from ._document import DOCUMENT_TYPES, HandoffType

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #111; max-width: 60rem; }
h1 { font-size: 1.4rem; }
h2 { font-size: 1.1rem; border-bottom: 1px solid #999; margin-top: 1.5rem; }
table { border-collapse: collapse; width: 100%; }
td, th { border: 1px solid #ccc; padding: .3rem; text-align: left; }
@media print { body { margin: 0; } }
"""


def _text(concept: m.Concept | None) -> str:
    if concept is None:
        return ""
    if concept.text:
        return concept.text
    return ", ".join(c.display or c.code or "" for c in concept.codings)


def _table(headers: Iterable[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f"<p>{escape(empty)}</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(
    package: m.PatientPackage, handoff_type: HandoffType, findings: list[Finding]
) -> str:
    patient = package.patient
    name = patient.names[0].display() if patient.names else patient.id
    ids = ", ".join(f"{i.value} ({i.assigner or i.system or ''})" for i in patient.identifiers)
    sections = [
        (
            "Problems and health concerns",
            _table(
                ["Problem", "Category", "Status", "Onset"],
                [
                    [
                        _text(p.code),
                        p.category.value.replace("_", " "),
                        p.clinical_status.value if p.clinical_status else "",
                        p.onset or "",
                    ]
                    for p in package.problems
                ],
                "No problems recorded.",
            ),
        ),
        (
            "Goals",
            _table(
                ["Goal", "Status", "Target", "Due"],
                [
                    [
                        _text(g.description),
                        g.lifecycle_status.value.replace("_", " "),
                        "; ".join(_text(t.measure) for t in g.targets),
                        ", ".join(t.due_date or "" for t in g.targets),
                    ]
                    for g in package.goals
                ],
                "No goals recorded.",
            ),
        ),
        (
            "Plan of care",
            _table(
                ["Plan", "Activity", "Status", "When"],
                [
                    [
                        plan.title or "",
                        a.planned.description or _text(a.planned.code),
                        a.planned.status.value.replace("_", " "),
                        (a.planned.scheduled_period.start or "")
                        if a.planned.scheduled_period
                        else (a.planned.scheduled_text or ""),
                    ]
                    for plan in package.care_plans
                    for a in plan.activities
                    if a.planned
                ],
                "No planned activities.",
            ),
        ),
        (
            "Referrals",
            _table(
                ["Service", "Performer", "Status", "Tracking"],
                [
                    [
                        _text(r.service),
                        (r.performer.name or "") if r.performer else "NONE",
                        r.status.value,
                        r.tracking.status.value if r.tracking else "",
                    ]
                    for r in package.referrals
                ],
                "No referrals.",
            ),
        ),
        (
            "Medications",
            _table(
                ["Medication", "Dosage", "Status", "Adherence"],
                [
                    [
                        _text(x.medication),
                        x.dosage or "",
                        x.status.value.replace("_", " "),
                        x.adherence or "",
                    ]
                    for x in package.medications
                ],
                "No medication list was recorded.",
            ),
        ),
        (
            "Care team",
            _table(
                ["Member", "Role", "Phone"],
                [
                    [
                        mem.party.name or "",
                        ", ".join(_text(r) for r in mem.roles),
                        mem.party.phone or "",
                    ]
                    for team in package.care_teams
                    for mem in team.members
                ],
                "No care team recorded.",
            ),
        ),
        (
            "Completeness check",
            _table(
                ["Severity", "Finding", "About"],
                [[f.severity, f.message, f.record or ""] for f in findings],
                "No gaps found.",
            ),
        ),
    ]
    caregivers = "; ".join(f"{c.name.display()} {c.phone or ''}" for c in patient.caregivers)
    body = "".join(
        f"<section><h2>{escape(title)}</h2>{content}</section>" for title, content in sections
    )
    heading = f"{escape(DOCUMENT_TYPES[handoff_type][1])}: {escape(name)}"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{heading}</title><style>{STYLE}</style></head><body>"
        f"<h1>{heading}</h1>"
        f"<p>Born {escape(patient.birth_date or 'unknown')}; identifiers: {escape(ids or 'none')}; "
        f"phone {escape(patient.phone or 'unknown')}"
        + (f"; caregiver {escape(caregivers)}" if caregivers else "")
        + f"</p>{body}</body></html>"
    )
