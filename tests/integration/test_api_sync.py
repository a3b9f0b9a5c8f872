"""The HTTP API over the real HAPI server: records put through the API are pushed, a
clinician's edit comes back through a pull and appears in the change feed, a handoff is
delivered, and the operations routes report what happened."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx

from fhir_bridge.config import ConnectionConfig, Settings
from fhir_bridge.documents import read_records
from tests.api_client import COLLECTION_OF, Api, api_keys
from tests.helpers import FIXTURES

NO_CACHE = {"Cache-Control": "no-cache"}


def test_put_push_edit_pull_feed_and_handoff(
    tmp_path: Path, fhir_base_url: str, fhir: httpx.Client
) -> None:
    namespace = f"https://bridge.test/{uuid.uuid4().hex[:10]}"
    url = f"sqlite:///{tmp_path / 'api.db'}"
    settings = Settings(
        database_url=url,
        namespace=namespace,
        connections={"hapi": ConnectionConfig(base_url=fhir_base_url, enrol="all")},
    )
    call, keys = Api(settings), api_keys(url)
    write, read = keys["write"], keys["read"]

    records = read_records(FIXTURES / "cc-diabetes-heart-failure.json")
    for record in records:
        body = record.model_dump(mode="json", exclude_none=True)
        put = call("PUT", f"/v1/{COLLECTION_OF[record.kind]}/{record.id}", key=write, json=body)
        assert put.status_code == 201, put.text

    planned = call("POST", "/v1/sync/hapi/push", key=write, params={"dry_run": True}).json()
    assert {w["action"] for w in planned["planned"]} == {"create"}
    assert len(planned["planned"]) >= len(records)
    assert planned["counts"]["created"] == 0  # nothing written
    assert call("GET", "/v1/sync/status", key=read).json()["connections"]["hapi"]["queue"] == {
        "pending": len(records)
    }

    pushed = call("POST", "/v1/sync/hapi/push", key=write)
    assert pushed.status_code == 200, pushed.text
    counts = pushed.json()["counts"]
    assert counts["created"] >= len(records)
    assert counts["failed"] == counts["dead_lettered"] == 0

    goal_id = next(r.id for r in records if r.kind == "goal")
    found = fhir.get(
        "/Goal", params={"identifier": f"{namespace}/goal|{goal_id}"}, headers=NO_CACHE
    ).json()
    (entry,) = found["entry"]
    goal = entry["resource"]
    goal["achievementStatus"] = {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/goal-achievement", "code": "achieved"}
        ]
    }
    assert fhir.put(f"/Goal/{goal['id']}", json=goal).status_code == 200

    pulled = call("POST", "/v1/sync/hapi/pull", key=write)
    assert pulled.status_code == 200, pulled.text
    assert pulled.json()["counts"]["updated"] >= 1
    assert call("GET", f"/v1/goals/{goal_id}", key=read).json()["achievement_status"] == "achieved"

    feed = call("GET", "/v1/changes", key=read).json()
    assert (goal_id, "updated") in {(c["id"], c["change"]) for c in feed["items"]}
    assert (
        call("GET", "/v1/changes", key=read, params={"since": feed["next_cursor"]}).json()["items"]
        == []
    )

    ready = call("GET", "/readyz", key=read).json()["connections"]["hapi"]
    assert ready["direction"] == "pull"
    assert ready["outcome"] == "ok"
    status = call("GET", "/v1/sync/status", key=read).json()["connections"]["hapi"]
    assert status["last_push"]["counts"]["created"] == counts["created"]
    assert status["queue"].get("pending", 0) == 0

    patient_id = next(r.id for r in records if r.kind == "patient")
    handed = call("POST", "/v1/handoffs", key=write, json={"patient_id": patient_id, "to": "hapi"})
    assert handed.status_code == 201, handed.text
    delivery = handed.json()["delivery"]
    bundle_id = re.fullmatch(r"delivered: Bundle/(\S+) on hapi", delivery)
    assert bundle_id is not None, delivery
    stored = fhir.get(f"/Bundle/{bundle_id.group(1)}").json()
    assert stored["identifier"]["value"] == handed.json()["package_id"]

    exposition = call("GET", "/metrics", key=read).text
    assert re.search(
        r'fhir_bridge_sync_runs_total\{connection="hapi",direction="push",outcome="ok"\} [1-9]',
        exposition,
    )
    assert re.search(
        r'fhir_bridge_fhir_request_seconds_count\{connection="hapi"\} [1-9]', exposition
    )
