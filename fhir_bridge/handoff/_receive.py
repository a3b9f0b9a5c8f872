"""Receiving a handoff: a document or transaction Bundle into internal records, patient matched."""

from __future__ import annotations

from typing import Any

from fhir_bridge import model as m
from fhir_bridge.mappers import MappingContext, from_fhir

Json = dict[str, Any]


def read_package(
    bundle: Json, ctx: MappingContext
) -> tuple[m.Patient, list[m.Record], dict[str, int]]:
    """The patient and records a document or transaction Bundle carries."""
    pairs = [
        (e["resource"], e.get("fullUrl"))
        for e in bundle.get("entry") or []
        if isinstance(e.get("resource"), dict)
        and e["resource"].get("resourceType") != "Composition"
    ]
    result = from_fhir(pairs, ctx)
    patients = [r for r in result.records if isinstance(r, m.Patient)]
    if len(patients) != 1:
        raise ValueError(f"a handoff carries one patient; this one carries {len(patients)}")
    return (
        patients[0],
        [r for r in result.records if not isinstance(r, m.Patient)],
        dict(result.skipped),
    )


def match_patient(incoming: m.Patient, known: list[m.Patient]) -> tuple[m.Patient | None, str]:
    """A stored patient sharing an identifier (system and value); else same name and birth date."""
    theirs = {(i.system, i.value) for i in incoming.identifiers}
    for patient in known:
        if theirs & {(i.system, i.value) for i in patient.identifiers}:
            return patient, "identifier"
    names = {(n.family or "").lower() for n in incoming.names}
    for patient in known:
        same_name = names & {(n.family or "").lower() for n in patient.names}
        if same_name and incoming.birth_date and patient.birth_date == incoming.birth_date:
            return patient, "name and birth date (uncertain: check before relying on it)"
    return None, "new patient"


def rekey(records: list[m.Record], patient_id: str) -> list[m.Record]:
    """The records pointed at the matched patient's internal id."""
    return [
        r.model_copy(update={"patient": m.Ref(id=patient_id)})
        if isinstance(r, m.PatientRecord)
        else r
        for r in records
    ]


def package_of(records: list[m.Record]) -> m.PatientPackage:
    """Stored records of one patient, as a package."""
    patients = [r for r in records if isinstance(r, m.Patient)]
    if len(patients) != 1:
        raise ValueError("expected exactly one patient among the records")
    groups: dict[str, list[m.Record]] = {}
    for record in records:
        groups.setdefault(record.kind, []).append(record)
    return m.PatientPackage(
        patient=patients[0],
        care_plans=groups.get("careplan", []),
        goals=groups.get("goal", []),
        referrals=groups.get("referral", []),
        referral_tasks=groups.get("referral_task", []),
        problems=groups.get("problem", []),
        medications=groups.get("medication", []),
        care_teams=groups.get("careteam", []),
        encounters=groups.get("encounter", []),
        screenings=groups.get("screening", []),
    )
