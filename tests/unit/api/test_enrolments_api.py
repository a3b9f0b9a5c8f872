"""/v1/patients/{id}/enrolments through the real app, on a real SQLite store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fhir_bridge.config import ConnectionConfig, Settings
from tests.api_client import Api, api_keys

PATIENT = {"updated_at": "2025-03-01T10:00:00Z", "names": [{"family": "Test"}]}
GOAL = {
    "updated_at": "2025-03-01T10:00:00Z",
    "patient": "pat-1",
    "description": {"text": "Walk 20 minutes a day"},
    "lifecycle_status": "active",
}


@pytest.fixture
def api(tmp_path: Path) -> tuple[Api, dict[str, str]]:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    settings = Settings(
        database_url=url,
        connections={
            "county": ConnectionConfig(base_url="http://county.test/fhir"),
            "registry": ConnectionConfig(base_url="http://registry.test/fhir", enrol="all"),
        },
    )
    return Api(settings), api_keys(url)


def queue(call: Any, key: str, connection: str) -> dict[str, int]:
    status = call("GET", "/v1/sync/status", key=key).json()
    return status["connections"][connection]["queue"]  # type: ignore[no-any-return]


def test_enrol_list_and_unenrol(api: Any) -> None:
    call, keys = api
    base = "/v1/patients/pat-1/enrolments"
    assert call("PUT", "/v1/patients/pat-1", key=keys["write"], json=PATIENT).status_code == 201
    assert call("PUT", "/v1/goals/g1", key=keys["write"], json=GOAL).status_code == 201
    assert queue(call, keys["read"], "county") == {}  # listed: not enrolled, nothing queued
    assert queue(call, keys["read"], "registry") == {"pending": 2}

    made = call("PUT", f"{base}/county", key=keys["write"], json={"mrn": "MRN-9"})
    assert made.status_code == 201
    assert made.json()["queued"] == 2
    assert made.json()["enrolment"]["mrn"] == "MRN-9"
    again = call("PUT", f"{base}/county", key=keys["write"])  # no body: the MRN stays
    assert again.status_code == 200
    assert again.json()["enrolment"]["mrn"] == "MRN-9"
    assert queue(call, keys["read"], "county") == {"pending": 2}
    status = call("GET", "/v1/sync/status", key=keys["read"]).json()["connections"]
    assert (status["county"]["enrol"], status["county"]["enrolled"]) == ("listed", 1)
    assert (status["registry"]["enrol"], status["registry"]["enrolled"]) == ("all", 0)

    listed = call("GET", base, key=keys["read"]).json()["items"]
    assert [(e["connection"], e["mrn"]) for e in listed] == [("county", "MRN-9")]
    one = call("GET", f"{base}/county", key=keys["read"])
    assert one.json()["patient_id"] == "pat-1"

    gone = call("DELETE", f"{base}/county", key=keys["write"])
    assert gone.status_code == 200
    assert gone.json() == {"was_enrolled": True, "dropped": 2, "remaining": []}
    assert call("GET", f"{base}/county", key=keys["read"]).status_code == 404
    assert queue(call, keys["read"], "county") == {}


def test_enrolments_need_keys_a_known_patient_and_connection(api: Any) -> None:
    call, keys = api
    base = "/v1/patients/pat-1/enrolments"
    assert call("GET", base).status_code == 401
    assert call("PUT", f"{base}/county", key=keys["read"]).status_code == 403
    missing = call("PUT", f"{base}/county", key=keys["write"])
    assert missing.status_code == 404
    assert "no patient 'pat-1'" in missing.json()["detail"]
    call("PUT", "/v1/patients/pat-1", key=keys["write"], json=PATIENT)
    nowhere = call("PUT", f"{base}/nowhere", key=keys["write"])
    assert nowhere.status_code == 404
    assert "no connection 'nowhere'" in nowhere.json()["detail"]
    bad = call("PUT", f"{base}/county", key=keys["write"], json={"mrn": "", "x": 1})
    assert bad.status_code == 422
