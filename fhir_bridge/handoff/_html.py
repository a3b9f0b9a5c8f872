"""A printable HTML summary of a handoff package, for the receiving nurse.

The page is the Jinja template ``templates/summary.html`` with autoescape on: record text is
data, never markup. This module only gathers what the page shows, as plain strings.
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from fhir_bridge import model as m

from ._check import Finding
from ._document import DOCUMENT_TYPES, HandoffType

_templates = Environment(
    loader=PackageLoader("fhir_bridge.handoff", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True, slots=True)
class Section:
    """One titled table of the page; ``empty`` is said instead when there are no rows."""

    title: str
    headers: tuple[str, ...]
    rows: list[list[str]]
    empty: str


def _adherence(adherence: m.Adherence | None) -> str:
    """Whether the medication is taken as directed, and as of when it was said."""
    if adherence is None:
        return ""
    said = _text(adherence.code)
    return f"{said} (as of {adherence.asserted})" if adherence.asserted else said


def _text(concept: m.Concept | None) -> str:
    if concept is None:
        return ""
    if concept.text:
        return concept.text
    return ", ".join(c.display or c.code or "" for c in concept.codings)


def _words(value: str) -> str:
    return value.replace("_", " ")


def _sections(package: m.PatientPackage, findings: list[Finding]) -> list[Section]:
    return [
        Section(
            "Problems and health concerns",
            ("Problem", "Category", "Status", "Onset"),
            [
                [
                    _text(p.code),
                    _words(p.category.value),
                    p.clinical_status.value if p.clinical_status else "",
                    p.onset or "",
                ]
                for p in package.problems
            ],
            "No problems recorded.",
        ),
        Section(
            "Goals",
            ("Goal", "Status", "Target", "Due"),
            [
                [
                    _text(g.description),
                    _words(g.lifecycle_status.value),
                    "; ".join(_text(t.measure) for t in g.targets),
                    ", ".join(t.due_date or "" for t in g.targets),
                ]
                for g in package.goals
            ],
            "No goals recorded.",
        ),
        Section(
            "Plan of care",
            ("Plan", "Activity", "Status", "When"),
            [
                [
                    plan.title or "",
                    a.planned.description or _text(a.planned.code),
                    _words(a.planned.status.value),
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
        Section(
            "Referrals",
            ("Service", "Performer", "Status", "Tracking"),
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
        Section(
            "Medications",
            ("Medication", "Dosage", "Status", "Adherence"),
            [
                [
                    _text(x.medication),
                    x.dosage or "",
                    _words(x.status.value),
                    _adherence(x.adherence),
                ]
                for x in package.medications
            ],
            "No medication list was recorded.",
        ),
        Section(
            "Care team",
            ("Member", "Role", "Phone"),
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
        Section(
            "Encounters",
            ("Encounter", "When", "Minutes", "Discharged to"),
            [
                [
                    ", ".join(_text(t) for t in e.types),
                    (e.period.start or "") if e.period else "",
                    f"{e.length_minutes:g}" if e.length_minutes is not None else "",
                    _text(e.hospitalization.discharge_disposition)
                    if e.hospitalization and e.hospitalization.discharge_disposition
                    else "",
                ]
                for e in package.encounters
            ],
            "No encounters recorded.",
        ),
        Section(
            "Completeness check",
            ("Severity", "Finding", "About"),
            [[f.severity, f.message, f.record or ""] for f in findings],
            "No gaps found.",
        ),
    ]


def render_html(
    package: m.PatientPackage, handoff_type: HandoffType, findings: list[Finding]
) -> str:
    """The page: the patient, a section per kind of record, and the completeness findings."""
    patient = package.patient
    ids = ", ".join(f"{i.value} ({i.assigner or i.system or ''})" for i in patient.identifiers)
    caregivers = "; ".join(f"{c.name.display()} {c.phone or ''}" for c in patient.caregivers)
    return _templates.get_template("summary.html").render(
        heading=DOCUMENT_TYPES[handoff_type][1],
        name=patient.names[0].display() if patient.names else patient.id,
        born=patient.birth_date or "unknown",
        identifiers=ids or "none",
        phone=patient.phone or "unknown",
        caregivers=caregivers,
        sections=_sections(package, findings),
    )
