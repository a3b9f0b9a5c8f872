"""Records and a clock for the storage tests."""

from __future__ import annotations

from datetime import UTC, datetime

from fhir_bridge import model as m

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def goal(text: str = "walk daily", goal_id: str = "g1", patient: str = "p1") -> m.Goal:
    return m.Goal(
        id=goal_id,
        updated_at=NOW,
        patient=patient,
        description=m.Concept(text=text),
        lifecycle_status=m.GoalLifecycle.active,
    )


def patient(patient_id: str = "p1") -> m.Patient:
    return m.Patient(id=patient_id, updated_at=NOW)
