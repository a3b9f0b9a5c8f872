"""The audit trail through the API: writes recorded with who, what and from where; GET /v1/audit
pages them for admin keys; request ids echoed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.api_client import Api, one_ehr_api

GOAL = {
    "updated_at": "2025-03-01T10:00:00Z",
    "patient": "pat-audit-1",
    "description": {"text": "Walk 20 minutes a day with Jane Quinlan"},
    "lifecycle_status": "active",
}


@pytest.fixture
def api(tmp_path: Path) -> tuple[Api, dict[str, str]]:
    return one_ehr_api(f"sqlite:///{tmp_path / 'api.db'}")


def test_a_write_is_recorded_with_its_author_and_no_body(api: Any) -> None:
    call, keys = api
    assert call("PUT", "/v1/goals/g-audit", key=keys["write"], json=GOAL).status_code in (200, 201)
    assert call("DELETE", "/v1/goals/g-audit", key=keys["write"]).status_code == 204
    page = call("GET", "/v1/audit", key=keys["admin"]).json()
    actions = [(e["action"], e["kind"], e["record_id"], e["actor"]) for e in page["items"]]
    assert actions == [
        ("PUT /v1/{collection}/{record_id}", "goal", "g-audit", "apikey:write"),
        ("DELETE /v1/{collection}/{record_id}", "goal", "g-audit", "apikey:write"),
    ]
    assert all(e["source"] == "127.0.0.1" and e["outcome"] == "ok" for e in page["items"])
    assert "Quinlan" not in json.dumps(page)
    assert page["next_cursor"] == page["items"][-1]["id"]
    assert call("GET", f"/v1/audit?after={page['next_cursor']}", key=keys["admin"]).json() == {
        "items": [],
        "next_cursor": page["next_cursor"],
    }


def test_refused_writes_and_reads_are_not_recorded(api: Any) -> None:
    call, keys = api
    assert call("PUT", "/v1/goals/g-x", key=keys["read"], json=GOAL).status_code == 403
    assert call("PUT", "/v1/goals/g-x", json=GOAL).status_code == 401
    assert call("PUT", "/v1/goals/g-x", key=keys["write"], json={}).status_code == 422
    assert call("GET", "/v1/goals", key=keys["read"]).status_code == 200
    assert call("GET", "/v1/audit", key=keys["admin"]).json()["items"] == []


def test_the_audit_is_for_admin_keys_and_filters(api: Any) -> None:
    call, keys = api
    assert call("GET", "/v1/audit").status_code == 401
    assert call("GET", "/v1/audit", key=keys["write"]).status_code == 403
    for record_id in ("g-a", "g-b"):
        call("PUT", f"/v1/goals/{record_id}", key=keys["write"], json=GOAL)
    call("PUT", "/v1/goals/g-c", key=keys["admin"], json=GOAL)
    by_record = call("GET", "/v1/audit?record=goal/g-b", key=keys["admin"]).json()["items"]
    assert [e["record_id"] for e in by_record] == ["g-b"]
    by_actor = call("GET", "/v1/audit?actor=apikey:admin", key=keys["admin"]).json()["items"]
    assert [e["record_id"] for e in by_actor] == ["g-c"]
    by_kind = call("GET", "/v1/audit?actor=apikey&limit=2", key=keys["admin"]).json()["items"]
    assert [e["record_id"] for e in by_kind] == ["g-a", "g-b"]
    later = call("GET", "/v1/audit?since=2999-01-01T00:00:00Z", key=keys["admin"]).json()
    assert later["items"] == []
    assert call("GET", "/v1/audit?since=yesterday", key=keys["admin"]).status_code == 422


def test_request_ids_are_echoed_or_made(api: Any) -> None:
    call, keys = api
    given = call("GET", "/healthz", headers={"X-Request-ID": "care-123.a"})
    assert given.headers["x-request-id"] == "care-123.a"
    made = call("GET", "/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert made.headers["x-request-id"] != "bad id\twith spaces"
    assert len(made.headers["x-request-id"]) == 32
    other = call("GET", "/healthz")
    assert other.headers["x-request-id"] != made.headers["x-request-id"]
    call("PUT", "/v1/goals/g-r", key=keys["write"], json=GOAL, headers={"X-Request-ID": "r-77"})
    (event,) = call("GET", "/v1/audit", key=keys["admin"]).json()["items"]
    assert event["detail"]["request_id"] == "r-77"
