"""The HTTP API through the real app (in process), on a real SQLite store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fhir_bridge.store import Store
from tests.api_client import Api, one_ehr_api
from tests.helpers import FIXTURES

GOAL = {
    "updated_at": "2025-03-01T10:00:00Z",
    "patient": "pat-1",
    "description": {"text": "Walk 20 minutes a day"},
    "lifecycle_status": "active",
}


@pytest.fixture
def api(tmp_path: Path) -> tuple[Api, dict[str, str]]:
    return one_ehr_api(f"sqlite:///{tmp_path / 'api.db'}")


def test_health_needs_no_key_everything_else_does(api: Any) -> None:
    call, keys = api
    assert call("GET", "/healthz").status_code == 200
    assert call("GET", "/readyz").json() == {"status": "ready", "connections": None}
    ready = call("GET", "/readyz", key=keys["read"]).json()
    assert ready == {"status": "ready", "connections": {"ehr": None}}
    assert call("GET", "/v1/goals/g1").status_code == 401
    assert call("GET", "/v1/goals/g1", key="fbk_wrong").status_code == 401
    assert call("PUT", "/v1/goals/g1", key=keys["read"], json=GOAL).status_code == 403


def test_readiness_fails_when_the_database_cannot_be_reached(api: Any, tmp_path: Path) -> None:
    call, _ = api
    call.app.state.store = Store(f"sqlite:///{tmp_path / 'missing' / 'x.db'}", migrate=False)
    answer = call("GET", "/readyz")
    assert answer.status_code == 503
    assert answer.json() == {"status": "database unreachable"}  # no error text, no names
    assert call("GET", "/healthz").status_code == 200  # the process itself is up


def test_put_get_with_etags_and_lost_update_protection(api: Any) -> None:
    call, keys = api
    created = call("PUT", "/v1/goals/g1", key=keys["write"], json=GOAL)
    assert created.status_code == 201
    assert created.headers["ETag"] == 'W/"1"'
    got = call("GET", "/v1/goals/g1", key=keys["read"])
    assert got.json()["description"]["text"] == "Walk 20 minutes a day"
    assert got.headers["ETag"] == 'W/"1"'
    changed = GOAL | {"lifecycle_status": "on_hold"}
    updated = call(
        "PUT", "/v1/goals/g1", key=keys["write"], json=changed, headers={"If-Match": 'W/"1"'}
    )
    assert updated.status_code == 200
    assert updated.headers["ETag"] == 'W/"2"'
    stale = call("PUT", "/v1/goals/g1", key=keys["write"], json=GOAL, headers={"If-Match": 'W/"1"'})
    assert stale.status_code == 412
    status = call("GET", "/v1/sync/status", key=keys["read"]).json()
    assert status["connections"]["ehr"]["queue"] == {"pending": 1}  # the write queued a push


def test_invalid_body_is_422_with_field_paths(api: Any) -> None:
    call, keys = api
    bad = GOAL | {"lifecycle_status": "finished", "start_date": "2025-02-30"}
    answer = call("PUT", "/v1/goals/g1", key=keys["write"], json=bad)
    assert answer.status_code == 422
    paths = {p["path"] for p in answer.json()["problems"]}
    assert {"lifecycle_status", "start_date"} <= paths
    mismatch = call("PUT", "/v1/goals/g1", key=keys["write"], json=GOAL | {"id": "g2"})
    assert mismatch.status_code == 422


def test_list_by_patient_with_paging_and_delete(api: Any) -> None:
    call, keys = api
    for i in range(3):
        call("PUT", f"/v1/goals/g{i}", key=keys["write"], json=GOAL)
    call("PUT", "/v1/goals/other", key=keys["write"], json=GOAL | {"patient": "pat-2"})
    page = call(
        "GET", "/v1/goals", key=keys["read"], params={"patient": "pat-1", "limit": 2}
    ).json()
    assert [g["id"] for g in page["items"]] == ["g0", "g1"]
    assert page["next_offset"] == 2
    rest = call(
        "GET", "/v1/goals", key=keys["read"], params={"patient": "pat-1", "offset": 2}
    ).json()
    assert [g["id"] for g in rest["items"]] == ["g2"]
    assert call("DELETE", "/v1/goals/g0", key=keys["write"]).status_code == 204
    assert call("GET", "/v1/goals/g0", key=keys["read"]).status_code == 404
    assert call("GET", "/v1/nothings", key=keys["read"]).status_code == 404


def test_delete_queues_the_deletion_for_the_connection_holding_the_record(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    call, keys = one_ehr_api(url)
    call("PUT", "/v1/goals/g1", key=keys["write"], json=GOAL)
    assert call("DELETE", "/v1/goals/g1", key=keys["write"]).status_code == 204
    assert call("DELETE", "/v1/goals/g1", key=keys["write"]).status_code == 404
    store = Store(url)
    try:
        (entry,) = store.outbox.due("ehr", datetime.now(UTC))
        assert (entry.record_id, entry.deleting, entry.record_version) == ("g1", True, 2)
        assert store.records.is_deleted("goal", "g1")
    finally:
        store.close()


def test_map_previews_the_fhir_bundle(api: Any) -> None:
    call, keys = api
    package = json.loads((FIXTURES / "behavioral-health-depression.json").read_text())
    bundle = call("POST", "/v1/map", key=keys["read"], json=package).json()
    assert bundle["resourceType"] == "Bundle"
    assert {"Patient", "Goal", "CarePlan"} <= {
        e["resource"]["resourceType"] for e in bundle["entry"]
    }


def test_openapi_is_served(api: Any) -> None:
    call, _ = api
    spec = call("GET", "/openapi.json").json()
    assert "/v1/{collection}/{record_id}" in spec["paths"]


def test_a_patient_with_records_is_deleted_only_with_them(api: Any) -> None:
    call, keys = api
    write = keys["write"]
    patient = {"updated_at": "2025-03-01T10:00:00Z"}
    assert call("PUT", "/v1/patients/pat-1", key=write, json=patient).status_code == 201
    assert call("PUT", "/v1/goals/g1", key=write, json=GOAL).status_code == 201
    refused = call("DELETE", "/v1/patients/pat-1", key=write)
    assert refused.status_code == 409
    assert "still has 1 record here" in refused.json()["detail"]
    assert call("GET", "/v1/goals/g1", key=keys["read"]).status_code == 200
    deleted = call("DELETE", "/v1/patients/pat-1", key=write, params={"with_records": True})
    assert deleted.status_code == 204
    assert call("GET", "/v1/goals/g1", key=keys["read"]).status_code == 404
    assert call("GET", "/v1/patients/pat-1", key=keys["read"]).status_code == 404
    late = call("PUT", "/v1/goals/g2", key=write, json=GOAL)
    assert late.status_code == 409
    assert "was deleted here" in late.json()["detail"]
    assert call("PUT", "/v1/patients/pat-1", key=write, json=patient).status_code == 201
    assert call("PUT", "/v1/goals/g2", key=write, json=GOAL).status_code == 201
