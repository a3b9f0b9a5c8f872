"""The month's minutes report: contacts follow their encounter records; totals and thresholds."""

from __future__ import annotations

from typing import Any

from fhir_bridge import model as m
from fhir_bridge.store import Store

from .records import NOW, patient

PPRF = {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PPRF"}


def _contact(
    encounter_id: str,
    patient_id: str,
    minutes: float | None,
    start: str = "2026-11-03T10:00:00-05:00",
    manager: str = "cm-ana",
    **changes: Any,
) -> m.Encounter:
    data: dict[str, Any] = {
        "id": encounter_id,
        "updated_at": NOW,
        "patient": patient_id,
        "status": "finished",
        "encounter_class": "virtual",
        "types": [{"system": "http://snomed.info/sct", "code": "185317003"}],
        "period": {"start": start},
        "length_minutes": minutes,
        "participants": [
            {"party": {"kind": "practitioner", "id": "driver"}},
            {"party": {"kind": "practitioner", "id": manager, "name": manager}, "roles": [PPRF]},
        ],
    }
    return m.Encounter.model_validate(data | changes)


def _month(store: Store) -> None:
    store.put_records(
        [
            patient("p1"),
            patient("p2"),
            _contact("e1", "p1", 22),
            _contact("e2", "p1", 25, start="2026-11-20"),
            _contact("e3", "p2", 15, manager="cm-ben"),
            _contact("e4", "p2", 10),
            _contact("e5", "p1", 30, start="2026-10-31T23:00:00-05:00"),  # October
            _contact("e6", "p1", 40, status="cancelled"),
            _contact("e7", "p1", None),
            _contact("e8", "p2", 300, encounter_class="inpatient"),
        ],
        [],
        NOW,
    )


def test_totals_per_patient_mark_the_thresholds(store: Store) -> None:
    _month(store)
    report = store.reports.minutes("2026-11")
    assert report.thresholds == (20, 40, 60)
    by_patient = {p.patient_id: p for p in report.patients}
    assert (by_patient["p1"].minutes, by_patient["p1"].contacts) == (47, 2)
    assert (by_patient["p1"].reached, by_patient["p1"].next_threshold) == (40, 60)
    assert by_patient["p1"].to_next == 13
    assert (by_patient["p2"].minutes, by_patient["p2"].reached) == (25, 20)


def test_totals_per_care_manager_count_the_primary_performer(store: Store) -> None:
    _month(store)
    managers = {c.care_manager_id: c for c in store.reports.minutes("2026-11").care_managers}
    assert set(managers) == {"cm-ana", "cm-ben"}
    ana = managers["cm-ana"]
    assert (ana.minutes, ana.contacts, ana.patients) == (57, 3, 2)
    assert ana.patients_reaching == {20: 2, 40: 1, 60: 0}
    assert managers["cm-ben"].patients_reaching == {20: 1, 40: 0, 60: 0}


def test_filters_by_patient_and_care_manager(store: Store) -> None:
    _month(store)
    only = store.reports.minutes("2026-11", patient_id="p2", care_manager_id="cm-ben")
    assert [(p.patient_id, p.minutes) for p in only.patients] == [("p2", 15)]
    assert store.reports.minutes("2026-10").patients[0].minutes == 30
    assert store.reports.minutes("2026-12").patients == []


def test_a_changed_or_deleted_encounter_changes_the_report(store: Store) -> None:
    _month(store)
    store.put_records([_contact("e1", "p1", 5)], [], NOW)
    assert store.reports.minutes("2026-11", patient_id="p1").patients[0].minutes == 30
    store.put_records([_contact("e2", "p1", 25, status="entered_in_error")], [], NOW)
    assert store.reports.minutes("2026-11", patient_id="p1").patients[0].minutes == 5
    assert store.records.delete("encounter", "e1", NOW)
    assert store.reports.minutes("2026-11", patient_id="p1").patients == []
