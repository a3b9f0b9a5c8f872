"""Sync, dead-letter, conflict, change-feed, handoff and metrics routes, in process on a real
SQLite store; every route refuses requests without a key, and writes without the scope."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from fhir_bridge import model as m
from fhir_bridge.config import ConnectionConfig, Settings
from fhir_bridge.documents import read_records
from fhir_bridge.store import NewConflict
from tests.api_client import Api, api_keys
from tests.helpers import FIXTURES
from tests.unit.sync.fhir_server import BASE, FhirServer

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
GOAL = {
    "kind": "goal",
    "id": "g1",
    "updated_at": "2025-03-01T10:00:00Z",
    "patient": "pat-1",
    "description": {"text": "Walk 20 minutes a day"},
    "lifecycle_status": "active",
}
# placeholders for path parameters when every route is called
SAMPLE_PARAMS = {"collection": "goals", "connection": "ehr"}
UNAUTHENTICATED = {"/healthz", "/readyz", "/openapi.json", "/docs", "/redoc"}


def _unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.fixture
def api(tmp_path: Path) -> tuple[Api, dict[str, str]]:
    """The app with one connection whose server cannot be reached."""
    url = f"sqlite:///{tmp_path / 'api.db'}"
    settings = Settings(
        database_url=url,
        connections={"ehr": ConnectionConfig(base_url=BASE, enrol="all", patient_mode="create")},
    )
    return Api(settings, transport=httpx.MockTransport(_unreachable)), api_keys(url)


def _routes(api: Api) -> list[tuple[str, str]]:
    spec = api.app.openapi()
    found = []
    for template, operations in spec["paths"].items():
        if template in UNAUTHENTICATED or template.startswith("/fhir/notify"):
            continue  # health needs no key; notifications carry the connection's secret
        path = re.sub(r"\{(\w+)\}", lambda g: SAMPLE_PARAMS.get(g[1], "1"), template)
        found += [(method.upper(), path) for method in operations]
    return found


def test_every_route_needs_a_key_and_writes_need_the_write_scope(api: Any) -> None:
    call, keys = api
    routes = _routes(call)
    assert len(routes) >= 18  # every route of the service but health and notifications
    for method, path in routes:
        assert call(method, path).status_code == 401, (method, path)
        assert call(method, path, key="fbk_not_a_key").status_code == 401, (method, path)
        if method != "GET" and path != "/v1/map":
            refused = call(method, path, key=keys["read"], json={})
            assert refused.status_code == 403, (method, path)
            assert "write" in refused.json()["detail"]


def _dead_letter(call: Api) -> int:
    store = call.store()
    try:
        store.put_records([m.Goal.model_validate(GOAL)], ["ehr"], NOW)
        (entry,) = store.outbox.due("ehr", NOW)
        store.outbox.mark_failed(entry, "HTTP 422: Goal.target: gol-1", None, NOW)
        return entry.id
    finally:
        store.close()


def test_dead_letters_are_listed_and_retried(api: Any) -> None:
    call, keys = api
    entry_id = _dead_letter(call)
    listed = call("GET", "/v1/dead-letters", key=keys["read"]).json()["items"]
    assert [(e["id"], e["record_id"], e["reason"]) for e in listed] == [
        (entry_id, "g1", "HTTP 422: Goal.target: gol-1")
    ]
    assert call("POST", f"/v1/dead-letters/{entry_id}/retry", key=keys["write"]).json() == {
        "id": entry_id,
        "status": "pending",
    }
    assert call("GET", "/v1/dead-letters", key=keys["read"]).json()["items"] == []
    status = call("GET", "/v1/sync/status", key=keys["read"]).json()
    assert status["connections"]["ehr"]["queue"] == {"pending": 1}
    # retrying again, or something that never was a dead letter, is a 404
    assert call("POST", f"/v1/dead-letters/{entry_id}/retry", key=keys["write"]).status_code == 404
    assert call("POST", "/v1/dead-letters/999/retry", key=keys["write"]).status_code == 404


def _refused(call: Api) -> None:
    """Goal writes refused by the server at run time, one goal waiting; transactions refused."""
    store = call.store()
    try:
        store.put_records([m.Goal.model_validate(GOAL | {"id": "g-refused"})], ["ehr"], NOW)
        (entry,) = [e for e in store.outbox.due("ehr", NOW) if e.record_id == "g-refused"]
        store.outbox.mark_blocked(entry, "Goal", "Goal writes refused", NOW)
        for what, status in (("Goal:write", 405), ("transaction", 501)):
            store.refusals.remember(
                "ehr", what, source="run-time", statement="s", now=NOW, status=status, said="no"
            )
        store.refusals.remember_declared("ehr", ["CarePlan:write"], "s", NOW)
    finally:
        store.close()


def test_status_lists_per_connection_each_type_not_sent_and_why(api: Any) -> None:
    call, keys = api
    _refused(call)
    ehr = call("GET", "/v1/sync/status", key=keys["read"]).json()["connections"]["ehr"]
    assert ehr["queue"] == {"blocked": 1}
    assert [(x["type"], x["source"], x["status"], x["waiting"]) for x in ehr["not_sent"]] == [
        ("CarePlan", "capability-statement", None, 0),
        ("Goal", "run-time", 405, 1),
    ]
    assert "read-only on this server" in ehr["not_sent"][0]["reason"]
    assert "HTTP 405 on 2025-03-01" in ehr["not_sent"][1]["reason"]
    assert [(x["mode"], x["status"]) for x in ehr["refused_modes"]] == [("transaction", 501)]


def _conflict(call: Api) -> None:
    local = GOAL | {"lifecycle_status": "on_hold"}
    remote = GOAL | {"lifecycle_status": "cancelled"}
    store = call.store()
    try:
        store.put_records([m.Goal.model_validate(local)], ["ehr"], NOW)
        store.apply_pull(
            "ehr",
            "Goal",
            records=[],
            links=[],
            conflicts=[NewConflict("goal", "g1", ["lifecycle_status"], GOAL, local, remote)],
            watermark=None,
            now=NOW,
        )
    finally:
        store.close()


def test_conflicts_are_listed_and_resolved_once(api: Any) -> None:
    call, keys = api
    _conflict(call)
    (item,) = call("GET", "/v1/conflicts", key=keys["read"]).json()["items"]
    assert item["fields"] == ["lifecycle_status"]
    assert (item["local"]["lifecycle_status"], item["remote"]["lifecycle_status"]) == (
        "on_hold",
        "cancelled",
    )
    url = f"/v1/conflicts/{item['id']}/resolve"
    bad = call("POST", url, key=keys["write"], json={"take": "theirs"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "take"]
    no_record = call("POST", url, key=keys["write"], json={"take": "merged"})
    assert no_record.status_code == 422
    assert "merged" in no_record.json()["detail"]
    wrong = call(
        "POST", url, key=keys["write"], json={"take": "merged", "record": GOAL | {"id": "g9"}}
    )
    assert wrong.status_code == 422
    done = call("POST", url, key=keys["write"], json={"take": "ehr"})
    assert done.status_code == 200, done.text
    assert done.json()["queued_for"] == "ehr"
    goal = call("GET", "/v1/goals/g1", key=keys["read"]).json()
    assert goal["lifecycle_status"] == "cancelled"
    again = call("POST", url, key=keys["write"], json={"take": "local"})
    assert again.status_code == 409
    assert call("GET", "/v1/conflicts", key=keys["read"]).json()["items"] == []
    resolved = call("GET", "/v1/conflicts", key=keys["read"], params={"status": "all"}).json()
    assert [c["status"] for c in resolved["items"]] == ["resolved"]
    assert call("GET", "/v1/conflicts/77", key=keys["read"]).status_code == 404


def test_change_feed_lists_pulled_changes_in_order_and_resumes(api: Any) -> None:
    call, keys = api
    store = call.store()
    try:
        for status in ("active", "on_hold", "completed"):
            goal = m.Goal.model_validate(GOAL | {"lifecycle_status": status})
            store.apply_pull(
                "ehr",
                "Goal",
                records=[(goal, False)],
                links=[],
                conflicts=[],
                watermark=None,
                now=NOW,
            )
        store.apply_pull(
            "ehr",
            "Goal",
            records=[],
            links=[],
            conflicts=[],
            watermark=None,
            now=NOW,
            deleted=[("goal", "g1")],
        )
        store.put_records([m.Goal.model_validate(GOAL | {"id": "g2"})], ["ehr"], NOW)
    finally:
        store.close()
    first = call("GET", "/v1/changes", key=keys["read"], params={"limit": 2}).json()
    assert [(c["id"], c["change"], c["version"]) for c in first["items"]] == [
        ("g1", "created", 1),
        ("g1", "updated", 2),
    ]
    rest = call("GET", "/v1/changes", key=keys["read"], params={"since": first["next_cursor"]})
    assert [(c["change"], c["version"]) for c in rest.json()["items"]] == [
        ("updated", 3),
        ("deleted", 4),
    ]  # a care manager's own write (g2) is not in the feed: the platform made it
    end = call("GET", "/v1/changes", key=keys["read"], params={"since": rest.json()["next_cursor"]})
    assert end.json() == {"items": [], "next_cursor": rest.json()["next_cursor"]}
    assert call("GET", "/v1/changes", key=keys["read"], params={"since": -1}).status_code == 422


def test_handoffs_are_built_checked_kept_and_refused_when_strict(api: Any) -> None:
    call, keys = api
    store = call.store()
    try:
        store.put_records(read_records(FIXTURES / "older-adult-caregiver.json"), [], NOW)
        store.put_records(
            read_records(FIXTURES / "incomplete" / "no-problems-no-meds-no-followup.json"), [], NOW
        )
    finally:
        store.close()
    made = call("POST", "/v1/handoffs", key=keys["write"], json={"patient_id": "pat-garcia"})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["document"]["type"] == "document"
    composition = body["document"]["entry"][0]["resource"]
    assert composition["type"]["coding"][0]["code"] == "18761-7"  # transfer summary
    assert [f for f in body["findings"] if f["severity"] == "error"] == []
    kept = call("GET", made.headers["Location"], key=keys["read"]).json()
    assert kept["document"] == body["document"]
    assert kept["patient_id"] == "pat-garcia"
    listed = call("GET", "/v1/handoffs", key=keys["read"]).json()["items"]
    assert [h["id"] for h in listed] == [body["id"]]

    incomplete = read_records(FIXTURES / "incomplete" / "no-problems-no-meds-no-followup.json")
    patient_id = next(r.id for r in incomplete if r.kind == "patient")
    refused = call(
        "POST",
        "/v1/handoffs",
        key=keys["write"],
        json={"patient_id": patient_id, "to": "ehr", "strict": True},
    )
    assert refused.status_code == 422
    assert "no-medication-list" in {f["code"] for f in refused.json()["findings"]}
    assert len(call("GET", "/v1/handoffs", key=keys["read"]).json()["items"]) == 1  # not kept

    for body_ in ({"patient_id": "nobody"}, {"patient_id": "pat-garcia", "type": "discharge"}):
        assert call("POST", "/v1/handoffs", key=keys["write"], json=body_).status_code == 422
    assert call("GET", "/v1/handoffs/99", key=keys["read"]).status_code == 404


def test_unreachable_server_is_a_gateway_error_and_metrics_count_it(api: Any) -> None:
    call, keys = api
    store = call.store()
    try:
        store.put_records([m.Goal.model_validate(GOAL)], ["ehr"], NOW)
    finally:
        store.close()
    before = call("GET", "/metrics", key=keys["read"]).text
    answer = call("POST", "/v1/sync/ehr/push", key=keys["write"])
    assert answer.status_code == 502
    assert answer.json()["error"] == "FhirTransportError"
    assert call("POST", "/v1/sync/elsewhere/push", key=keys["write"]).status_code == 404
    after = call("GET", "/metrics", key=keys["read"]).text
    assert 'fhir_bridge_outbox_entries{connection="ehr",status="pending"} 1.0' in after
    errors = (
        r'fhir_bridge_fhir_requests_total\{connection="ehr",method="GET",outcome="error"\} (\S+)'
    )
    count_before = float(m_.group(1)) if (m_ := re.search(errors, before)) else 0.0
    found = re.search(errors, after)
    assert found is not None
    assert float(found.group(1)) > count_before


def _documented(spec: dict[str, Any], method: str, path: str, answer: Any) -> None:
    """The answer is one the OpenAPI document describes: its status, media type and schema."""
    operation = spec["paths"][path][method.lower()]
    described = operation["responses"][str(answer.status_code)]["content"]
    media_type = answer.headers["content-type"].split(";")[0]
    schema = described[media_type]["schema"]
    assert "$ref" in schema or "oneOf" in schema or "properties" in schema, (method, path)
    validator = Draft202012Validator({**schema, "components": spec["components"]})
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(answer.json())]
    assert errors == [], (method, path, errors)


def test_due_items_list_the_open_activities_of_transitional_care_plans(api: Any) -> None:
    call, keys = api
    store = call.store()
    try:
        store.put_records(read_records(FIXTURES / "transitional-care-copd.json"), [], NOW)
        store.put_records(read_records(FIXTURES / "cc-diabetes-heart-failure.json"), [], NOW)
    finally:
        store.close()
    answer = call("GET", "/v1/due", key=keys["read"], params={"today": "2025-03-05"}).json()
    assert answer["today"] == "2025-03-05"
    assert [(i["plan_id"], i["kind"], i["due"], i["overdue"]) for i in answer["items"]] == [
        ("cp-okafor-tcm", "CommunicationRequest", "2025-03-04", True),
        ("cp-okafor-tcm", "Appointment", "2025-03-06", False),
    ]  # the chronic care plan has no time-boxed activities; an unscheduled one is not due
    assert answer["overdue"] == 1
    other = call("GET", "/v1/due", key=keys["read"], params={"patient_id": "pat-rivera"})
    assert other.json()["items"] == []
    assert call("GET", "/v1/due", params={"today": "2025-03-05"}).status_code == 401
    assert call("GET", "/v1/due", key=keys["read"], params={"today": "soon"}).status_code == 422


def test_every_json_answer_is_described_by_the_openapi_document(api: Any) -> None:
    """Each route's answer matches the response model /openapi.json publishes for it."""
    call, keys = api
    spec = call("GET", "/openapi.json").json()
    _conflict(call)
    (conflict,) = call("GET", "/v1/conflicts", key=keys["read"]).json()["items"]
    entry_id = _dead_letter(call)
    _refused(call)
    store = call.store()
    try:
        store.put_records(read_records(FIXTURES / "older-adult-caregiver.json"), [], NOW)
        store.put_records(
            read_records(FIXTURES / "incomplete" / "no-problems-no-meds-no-followup.json"), [], NOW
        )
        goal = m.Goal.model_validate(GOAL | {"id": "g7", "lifecycle_status": "completed"})
        store.apply_pull(
            "ehr", "Goal", records=[(goal, False)], links=[], conflicts=[], watermark=None, now=NOW
        )
        store.runs.finish(store.runs.start("ehr", "push", NOW), "ok", {"sent": 1}, NOW)
        store.runs.finish(store.runs.start("ehr", "pull", NOW), "failed", {"failed": 1}, NOW)
        store.runs.start("ehr", "push", NOW)  # still running
    finally:
        store.close()
    key = keys["admin"]
    calls: list[tuple[str, str, str, dict[str, Any]]] = [
        ("GET", "/healthz", "/healthz", {}),
        ("GET", "/readyz", "/readyz", {}),
        ("PUT", "/v1/goals/g1", "/v1/{collection}/{record_id}", {"json": GOAL}),
        ("GET", "/v1/patients/pat-garcia", "/v1/{collection}/{record_id}", {}),
        ("GET", "/v1/care-plans", "/v1/{collection}", {"params": {"limit": 1}}),
        ("POST", "/v1/map", "/v1/map", {"json": GOAL}),
        ("GET", "/v1/sync/status", "/v1/sync/status", {}),
        ("GET", "/v1/dead-letters", "/v1/dead-letters", {}),
        ("POST", f"/v1/dead-letters/{entry_id}/retry", "/v1/dead-letters/{entry_id}/retry", {}),
        ("GET", "/v1/conflicts", "/v1/conflicts", {"params": {"status": "all"}}),
        ("GET", f"/v1/conflicts/{conflict['id']}", "/v1/conflicts/{conflict_id}", {}),
        (
            "POST",
            f"/v1/conflicts/{conflict['id']}/resolve",
            "/v1/conflicts/{conflict_id}/resolve",
            {"json": {"take": "local"}},
        ),
        ("GET", "/v1/changes", "/v1/changes", {}),
        ("GET", "/v1/due", "/v1/due", {}),
        ("POST", "/v1/handoffs", "/v1/handoffs", {"json": {"patient_id": "pat-garcia"}}),
        (
            "POST",
            "/v1/handoffs",
            "/v1/handoffs",
            {"json": {"patient_id": "pat-doyle", "to": "ehr", "strict": True}},
        ),
        ("GET", "/v1/handoffs", "/v1/handoffs", {}),
        ("GET", "/v1/handoffs/1", "/v1/handoffs/{handoff_id}", {}),
        ("GET", "/v1/audit", "/v1/audit", {"params": {"actor": "apikey"}}),
    ]
    for method, url, path, kwargs in calls:
        answer = call(method, url, key=key, **kwargs)
        assert answer.status_code < 500, (method, url, answer.text)
        _documented(spec, method, path, answer)
    status = call("GET", "/v1/sync/status", key=key).json()
    assert status["recent_runs"]
    assert status["failed_runs"]  # the runs, failed and not, were among the answers checked
    assert status["recent_runs"][0]["finished_at"] is None
    changes = call("GET", "/v1/changes", key=key).json()["items"]
    assert [c["id"] for c in changes] == ["g7"]


def test_a_push_through_the_api_reaches_the_server_and_a_handoff_is_delivered(
    tmp_path: Path,
) -> None:
    """The app's transport reaches every client it makes: push, pull and handoff delivery."""
    server = FhirServer()
    url = f"sqlite:///{tmp_path / 'api.db'}"
    settings = Settings(
        database_url=url,
        connections={"ehr": ConnectionConfig(base_url=BASE, enrol="all", patient_mode="create")},
    )
    call, keys = Api(settings, transport=server.transport), api_keys(url)
    store = call.store()
    try:
        store.put_records(read_records(FIXTURES / "older-adult-caregiver.json"), ["ehr"], NOW)
    finally:
        store.close()
    pushed = call("POST", "/v1/sync/ehr/push", key=keys["write"])
    assert pushed.status_code == 200, pushed.text
    assert pushed.json()["counts"]["created"] > 0
    assert len(server.of_type("Patient")) == 1
    deleted = call("DELETE", "/v1/goals/goal-garcia-nofalls", key=keys["write"])
    assert deleted.status_code == 204, deleted.text
    planned = call("POST", "/v1/sync/ehr/push", key=keys["write"], params={"dry_run": True})
    assert [
        (d["action"], d["resource_type"], d["record"]) for d in planned.json()["planned_deletions"]
    ] == [("entered-in-error", "Goal", "goal/goal-garcia-nofalls")]
    assert call("POST", "/v1/sync/ehr/push", key=keys["write"]).json()["counts"]["deleted"] == 1
    pulled = call("POST", "/v1/sync/ehr/pull", key=keys["write"])
    assert pulled.status_code == 200, pulled.text
    assert pulled.json()["counts"]["new"] == 0
    made = call(
        "POST", "/v1/handoffs", key=keys["write"], json={"patient_id": "pat-garcia", "to": "ehr"}
    )
    assert made.status_code == 201, made.text
    assert made.json()["delivery"].startswith("delivered as")


def test_a_held_patient_is_listed_and_settled_through_the_api(tmp_path: Path) -> None:
    """Match mode: two namesakes on the EHR hold the patient; accepting one releases it."""
    server = FhirServer()
    namesake = {
        "resourceType": "Patient",
        "name": [{"family": "Garcia", "given": ["Rosa"]}],
        "birthDate": "1938-09-09",
        "gender": "female",
    }
    first = server.add(namesake)
    server.add(namesake)
    url = f"sqlite:///{tmp_path / 'api.db'}"
    settings = Settings(
        database_url=url, connections={"ehr": ConnectionConfig(base_url=BASE, enrol="all")}
    )
    call, keys = Api(settings, transport=server.transport), api_keys(url)
    store = call.store()
    try:
        store.put_records(read_records(FIXTURES / "older-adult-caregiver.json"), ["ehr"], NOW)
    finally:
        store.close()

    pushed = call("POST", "/v1/sync/ehr/push", key=keys["write"]).json()
    assert (pushed["counts"]["held"], pushed["counts"]["created"]) == (1, 0)
    status = call("GET", "/v1/sync/status", key=keys["read"]).json()["connections"]["ehr"]
    assert (status["patient_mode"], status["matched"], status["held"]) == ("match", 0, 1)
    assert status["queue"]["held"] > 0
    (held,) = call("GET", "/v1/sync/held", key=keys["read"]).json()
    assert (held["patient_id"], held["step"], held["candidates"]) == (
        "pat-garcia",
        "demographics",
        2,
    )
    assert "Garcia" not in held["reason"]

    path = "/v1/sync/ehr/matches/pat-garcia"
    missing = call("POST", path, key=keys["write"], json={"server_id": "nobody"})
    assert missing.status_code == 422
    assert "no Patient/nobody" in missing.json()["detail"]
    accepted = call("POST", path, key=keys["write"], json={"server_id": first["id"]})
    assert accepted.status_code == 200, accepted.text
    assert (accepted.json()["state"], accepted.json()["step"]) == ("matched", "accepted")
    assert call("GET", "/v1/sync/held", key=keys["read"]).json() == []

    again = call("POST", "/v1/sync/ehr/push", key=keys["write"]).json()
    assert again["counts"]["created"] > 0
    assert len(server.of_type("Patient")) == 2
    plan = server.of_type("CarePlan")[0]
    assert plan["subject"]["reference"] == f"Patient/{first['id']}"
