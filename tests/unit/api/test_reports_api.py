"""/v1/reports/minutes through the real app: check-ins put as records, totals read back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fhir_bridge.config import Settings
from tests.api_client import Api, api_keys

PATIENT = {"updated_at": "2026-11-01T10:00:00Z", "names": [{"family": "Test"}]}


def _check_in(minutes: int, start: str) -> dict[str, Any]:
    return {
        "updated_at": "2026-11-30T10:00:00Z",
        "patient": "pat-1",
        "status": "finished",
        "encounter_class": "virtual",
        "types": [{"system": "http://snomed.info/sct", "code": "185317003"}],
        "period": {"start": start},
        "length_minutes": minutes,
        "participants": [{"party": {"kind": "practitioner", "id": "cm-1", "name": "Ana"}}],
    }


@pytest.fixture
def api(tmp_path: Path) -> tuple[Api, dict[str, str]]:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    return Api(Settings(database_url=url)), api_keys(url)


def test_the_minutes_of_a_month(api: Any) -> None:
    call, keys = api
    assert call("PUT", "/v1/patients/pat-1", key=keys["write"], json=PATIENT).status_code == 201
    for n, (minutes, start) in enumerate(
        [(22, "2026-11-03"), (20, "2026-11-17"), (9, "2026-12-01")]
    ):
        answer = call(
            "PUT", f"/v1/encounters/e{n}", key=keys["write"], json=_check_in(minutes, start)
        )
        assert answer.status_code == 201
    report = call("GET", "/v1/reports/minutes?month=2026-11", key=keys["read"]).json()
    assert report["thresholds"] == [20, 40, 60]
    (patient,) = report["patients"]
    assert (patient["patient_id"], patient["minutes"], patient["contacts"]) == ("pat-1", 42, 2)
    assert (patient["reached"], patient["next_threshold"], patient["to_next"]) == (40, 60, 18)
    (manager,) = report["care_managers"]
    assert manager["care_manager_id"] == "cm-1"
    assert manager["patients_reaching"] == {"20": 1, "40": 1, "60": 0}
    other = call("GET", "/v1/reports/minutes?month=2026-11&patient=nobody", key=keys["read"])
    assert other.json()["patients"] == []


@pytest.mark.parametrize("query", ["month=2026-13", "month=november", ""])
def test_a_bad_month_is_a_422(api: Any, query: str) -> None:
    call, keys = api
    assert call("GET", f"/v1/reports/minutes?{query}", key=keys["read"]).status_code == 422


def test_the_report_needs_a_key(api: Any) -> None:
    call, _ = api
    assert call("GET", "/v1/reports/minutes?month=2026-11").status_code == 401
