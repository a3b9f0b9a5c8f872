"""The FHIR server the integration tests use does what fhir-bridge relies on.

Runs against the local HAPI sandbox (or ``FHIR_BRIDGE_TEST_FHIR_URL``) with public example data
from ``shared/fhir-examples``. The server is shared by every test, so each test writes its own
resources under identifiers unique to this run and only looks at those.
"""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from fhir_bridge import sandbox
from tests.helpers import EXAMPLES

pytestmark = pytest.mark.integration

SYNTHEA = sorted((EXAMPLES / "synthea").glob("*.json"))
RUN = uuid.uuid4().hex[:12]
SYSTEM = "urn:fhir-bridge:test:sandbox"

Resource = dict[str, Any]


def _identifier(label: str) -> Resource:
    return {"system": SYSTEM, "value": f"{RUN}-{label}"}


def _token(label: str) -> str:
    return f"{SYSTEM}|{RUN}-{label}"


def _patient(label: str) -> Resource:
    return {
        "resourceType": "Patient",
        "identifier": [_identifier(label)],
        "name": [{"family": "Sandbox", "given": [label]}],
    }


def _goal(label: str, patient_id: str) -> Resource:
    return {
        "resourceType": "Goal",
        "identifier": [_identifier(label)],
        "lifecycleStatus": "active",
        "description": {"text": f"sandbox test goal {label}"},
        "subject": {"reference": f"Patient/{patient_id}"},
    }


def _created(client: httpx.Client, resource: Resource) -> Resource:
    response = client.post(f"/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text[:2000]
    body: Resource = response.json()
    return body


def _all_pages(client: httpx.Client, first: httpx.Response) -> tuple[list[Resource], int]:
    """Every resource of a search, following ``next`` links exactly as given; and page count."""
    pages, resources, response = 0, [], first
    seen_links: set[str] = set()
    while True:
        assert response.status_code == 200, response.text[:2000]
        bundle = response.json()
        pages += 1
        resources += [e["resource"] for e in bundle.get("entry", [])]
        following = [link["url"] for link in bundle.get("link", []) if link["relation"] == "next"]
        if not following:
            return resources, pages
        assert following[0] not in seen_links, "paging loops"
        seen_links.add(following[0])
        assert pages < 200
        response = client.get(following[0])


def _search_ids(client: httpx.Client, path: str, **params: str) -> set[str]:
    resources, _ = _all_pages(client, client.get(path, params=params))
    return {r["id"] for r in resources}


def _id_of(location: str) -> str:
    """``Goal/12/_history/1`` (or absolute) -> ``12``."""
    parts = location.split("/_history", maxsplit=1)[0].rstrip("/").split("/")
    return parts[-1]


# --- CapabilityStatement -----------------------------------------------------------------


def test_metadata_names_the_pinned_hapi_version(
    fhir_base_url: str, using_local_sandbox: bool
) -> None:
    name, version = sandbox.server_software(fhir_base_url)
    assert name, "CapabilityStatement.software.name is missing"
    capability = httpx.get(
        f"{fhir_base_url}/metadata", headers={"Accept": "application/fhir+json"}, timeout=60
    ).json()
    assert capability["fhirVersion"] == "4.0.1"
    if using_local_sandbox:
        assert name == "HAPI FHIR Server"
        assert version == sandbox.HAPI_VERSION


def test_pinned_version_constant_matches_the_pom() -> None:
    assert sandbox.pom_hapi_version() == sandbox.HAPI_VERSION


# --- Synthea transactions, _lastUpdated, paging, _history -------------------------------


@dataclass
class Upload:
    """What posting one Synthea transaction bundle produced."""

    name: str
    status: int
    request: Resource
    response: Resource
    ids: dict[str, list[str]] = field(default_factory=dict)  # type -> ids, in bundle order


@pytest.fixture(scope="module")
def synthea(fhir: httpx.Client) -> dict[str, Upload]:
    """Every Synthea bundle posted once as a transaction."""
    assert SYNTHEA, f"no Synthea bundles in {EXAMPLES / 'synthea'}"
    uploads: dict[str, Upload] = {}
    for path in SYNTHEA:
        bundle = json.loads(path.read_text(encoding="utf-8"))
        response = fhir.post("", json=bundle)
        body = response.json()
        upload = Upload(path.name, response.status_code, bundle, body)
        if response.status_code == 200:
            for sent, got in zip(bundle["entry"], body.get("entry", []), strict=False):
                kind = sent["resource"]["resourceType"]
                upload.ids.setdefault(kind, []).append(_id_of(got["response"]["location"]))
        uploads[path.name] = upload
    return uploads


@pytest.mark.parametrize("name", [p.name for p in SYNTHEA])
def test_a_synthea_transaction_bundle_is_stored_whole(
    synthea: dict[str, Upload], name: str
) -> None:
    upload = synthea[name]
    assert upload.status == 200, json.dumps(upload.response)[:2000]
    assert upload.response["type"] == "transaction-response"
    entries = upload.response["entry"]
    assert len(entries) == len(upload.request["entry"])
    assert all(e["response"]["status"].startswith("201") for e in entries)
    # urn:uuid references were rewritten to the ids the server gave
    patient = upload.ids["Patient"][0]
    for kind in ("Encounter", "Condition", "Observation"):
        assert len(upload.ids.get(kind, [])) == sum(
            1 for e in upload.request["entry"] if e["resource"]["resourceType"] == kind
        )
    assert upload.ids.get("Encounter"), "every Synthea patient has encounters"
    assert patient


def test_last_updated_search_finds_what_was_written(
    fhir: httpx.Client, synthea: dict[str, Upload]
) -> None:
    patients = [u.ids["Patient"][0] for u in synthea.values()]
    first = fhir.get(f"/Patient/{patients[0]}")
    assert first.status_code == 200
    since = first.json()["meta"]["lastUpdated"]
    found = _search_ids(fhir, "/Patient", _lastUpdated=f"ge{since}", _count="50")
    assert set(patients) <= found
    later = datetime.fromisoformat(since) + timedelta(days=1)
    assert not _search_ids(fhir, "/Patient", _lastUpdated=f"gt{later.isoformat()}")


def test_paged_search_following_next_links_returns_every_resource_once(
    fhir: httpx.Client, synthea: dict[str, Upload]
) -> None:
    upload = max(synthea.values(), key=lambda u: len(u.ids.get("Observation", [])))
    patient = upload.ids["Patient"][0]
    expected = upload.ids["Observation"]
    first = fhir.get("/Observation", params={"subject": f"Patient/{patient}", "_count": "7"})
    resources, pages = _all_pages(fhir, first)
    ids = [r["id"] for r in resources]
    assert len(ids) == len(set(ids)), "a resource came twice"
    assert set(ids) == set(expected)
    assert pages == -(-len(expected) // 7)
    assert pages > 1


def test_history_lists_every_version(fhir: httpx.Client, synthea: dict[str, Upload]) -> None:
    goal_id = next(u.ids["Goal"][0] for u in synthea.values() if u.ids.get("Goal"))
    current = fhir.get(f"/Goal/{goal_id}").json()
    changed = copy.deepcopy(current)
    changed["lifecycleStatus"] = "cancelled"
    update = fhir.put(f"/Goal/{goal_id}", json=changed)
    assert update.status_code == 200, update.text[:2000]
    history = fhir.get(f"/Goal/{goal_id}/_history").json()
    assert history["type"] == "history"
    versions = [e["resource"]["meta"]["versionId"] for e in history["entry"]]
    assert versions == ["2", "1"]
    assert history["entry"][0]["resource"]["lifecycleStatus"] == "cancelled"
    assert history["entry"][1]["resource"]["lifecycleStatus"] == current["lifecycleStatus"]
    since = current["meta"]["lastUpdated"]
    type_history = fhir.get("/Goal/_history", params={"_since": since, "_count": "500"})
    assert type_history.status_code == 200
    assert goal_id in {e["resource"]["id"] for e in type_history.json().get("entry", [])}


# --- conditional create / update, If-Match, transactions --------------------------------


def test_conditional_create_twice_creates_one_resource(fhir: httpx.Client) -> None:
    patient = _patient("conditional-create")
    headers = {"If-None-Exist": f"identifier={_token('conditional-create')}"}
    first = fhir.post("/Patient", json=patient, headers=headers)
    second = fhir.post("/Patient", json=patient, headers=headers)
    assert first.status_code == 201, first.text[:2000]
    assert second.status_code == 200, second.text[:2000]
    assert _id_of(first.headers["Location"]) == _id_of(second.headers["Location"])
    assert len(_search_ids(fhir, "/Patient", identifier=_token("conditional-create"))) == 1


def test_conditional_update_by_identifier_creates_then_updates(fhir: httpx.Client) -> None:
    patient = _created(fhir, _patient("conditional-update-subject"))
    goal = _goal("conditional-update", patient["id"])
    url = f"/Goal?identifier={_token('conditional-update')}"
    first = fhir.put(url, json=goal)
    assert first.status_code == 201, first.text[:2000]
    goal["lifecycleStatus"] = "on-hold"
    second = fhir.put(url, json=goal)
    assert second.status_code == 200, second.text[:2000]
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["meta"]["versionId"] == "2"
    assert second.headers["ETag"] == 'W/"2"'


def test_if_match_with_a_stale_version_is_refused(
    fhir: httpx.Client, using_local_sandbox: bool
) -> None:
    patient = _created(fhir, _patient("if-match"))
    first = fhir.get(f"/Patient/{patient['id']}")
    assert first.headers["ETag"] == 'W/"1"'
    patient["active"] = True
    fresh = fhir.put(f"/Patient/{patient['id']}", json=patient, headers={"If-Match": 'W/"1"'})
    assert fresh.status_code == 200, fresh.text[:2000]
    assert fresh.headers["ETag"] == 'W/"2"'
    patient["active"] = False
    stale = fhir.put(f"/Patient/{patient['id']}", json=patient, headers={"If-Match": 'W/"1"'})
    assert stale.status_code in (409, 412), stale.text[:2000]
    assert stale.json()["resourceType"] == "OperationOutcome"
    if using_local_sandbox:  # HAPI answers 409, not the 412 of the spec (see docs/sandbox.md)
        assert stale.status_code == 409
        assert "HAPI-0989" in stale.text
    now = fhir.get(f"/Patient/{patient['id']}").json()
    assert now["meta"]["versionId"] == "2"
    assert now["active"] is True


def test_a_transaction_with_one_bad_entry_changes_nothing(fhir: httpx.Client) -> None:
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    missing = f"Patient/missing-{RUN}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient_url,
                "resource": _patient("atomic"),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {**_goal("atomic-good", "x"), "subject": {"reference": patient_url}},
                "request": {"method": "POST", "url": "Goal"},
            },
            {  # refers to a patient that does not exist
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {**_goal("atomic-bad", "x"), "subject": {"reference": missing}},
                "request": {"method": "POST", "url": "Goal"},
            },
        ],
    }
    response = fhir.post("", json=bundle)
    assert 400 <= response.status_code < 500, response.text[:2000]
    assert response.json()["resourceType"] == "OperationOutcome"
    assert not _search_ids(fhir, "/Patient", identifier=_token("atomic"))
    assert not _search_ids(fhir, "/Goal", identifier=_token("atomic-good"))
    assert not _search_ids(fhir, "/Goal", identifier=_token("atomic-bad"))


def test_a_batch_applies_its_entries_independently(fhir: httpx.Client) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": _patient("batch-good"), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": f"Patient/missing-{RUN}"}},
        ],
    }
    response = fhir.post("", json=bundle)
    assert response.status_code == 200, response.text[:2000]
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert statuses[0].startswith("201")
    assert statuses[1].startswith("404")
    assert len(_search_ids(fhir, "/Patient", identifier=_token("batch-good"))) == 1


# --- validation ----------------------------------------------------------------------------


def _us_core_goal(patient_id: str) -> Resource:
    """The US Core example Goal, pointed at a patient of ours, without its profile claim."""
    goal: Resource = json.loads((EXAMPLES / "us-core" / "goal-1.json").read_text("utf-8"))
    goal.pop("id", None)
    goal.pop("meta", None)
    goal.pop("expressedBy", None)
    goal["subject"] = {"reference": f"Patient/{patient_id}"}
    goal["identifier"] = [_identifier(f"validated-{uuid.uuid4().hex[:6]}")]
    return goal


def test_validation_refuses_a_goal_without_lifecycle_status(validating_base_url: str) -> None:
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    with httpx.Client(base_url=validating_base_url, headers=headers, timeout=120) as client:
        patient = _created(client, _patient("validated-subject"))
        valid = _us_core_goal(patient["id"])
        accepted = client.post("/Goal", json=valid)
        assert accepted.status_code == 201, accepted.text[:3000]

        invalid = _us_core_goal(patient["id"])
        del invalid["lifecycleStatus"]
        refused = client.post("/Goal", json=invalid)
        assert refused.status_code in (400, 422), refused.text[:3000]
        outcome = refused.json()
        assert outcome["resourceType"] == "OperationOutcome"
        errors = [i for i in outcome["issue"] if i["severity"] in ("error", "fatal")]
        assert any("lifecycleStatus" in json.dumps(i) for i in errors), outcome
        assert not _search_ids(client, "/Goal", identifier=invalid["identifier"][0]["value"])


# --- REST-hook subscription ---------------------------------------------------------------


@dataclass
class Listener:
    url: str
    received: list[tuple[str, str, bytes]]
    arrived: threading.Event


@pytest.fixture
def listener() -> Iterator[Listener]:
    """A small HTTP server on 127.0.0.1 that records every request it gets."""
    received: list[tuple[str, str, bytes]] = []
    arrived = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            received.append((self.command, self.path, self.rfile.read(length)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            arrived.set()

        do_POST = do_PUT = _record  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Listener(f"http://127.0.0.1:{server.server_address[1]}/hook", received, arrived)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")


def test_rest_hook_subscription_delivers_a_notification(
    fhir: httpx.Client, fhir_base_url: str, listener: Listener
) -> None:
    if not _is_loopback(fhir_base_url):
        pytest.skip("the server under test cannot reach a listener on this machine")
    tag = f"subscription-{uuid.uuid4().hex[:6]}"
    subscription = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "fhir-bridge sandbox test",
        "criteria": f"Goal?identifier={_token(tag)}",
        "channel": {
            "type": "rest-hook",
            "endpoint": listener.url,
            "payload": "application/fhir+json",
        },
    }
    created = _created(fhir, subscription)
    try:
        deadline = time.monotonic() + 90
        while fhir.get(f"/Subscription/{created['id']}").json()["status"] != "active":
            assert time.monotonic() < deadline, "the subscription never became active"
            time.sleep(0.5)
        patient = _created(fhir, _patient(f"{tag}-subject"))
        other = _goal(f"{tag}-other", patient["id"])  # does not match the criteria
        _created(fhir, other)
        goal = _created(fhir, _goal(tag, patient["id"]))
        assert listener.arrived.wait(timeout=60), "no notification within 60 s"
        time.sleep(1.0)  # anything else (a wrong match) would have come by now
        assert len(listener.received) == 1, listener.received
        method, path, body = listener.received[0]
        if method == "PUT":  # HAPI: payload -> PUT endpoint/Type/id with the resource
            assert path == f"/hook/Goal/{goal['id']}"
            assert json.loads(body)["id"] == goal["id"]
        else:  # id-only style: POST to the endpoint itself
            assert (method, path) == ("POST", "/hook")
    finally:
        fhir.delete(f"/Subscription/{created['id']}")


# --- bulk export ----------------------------------------------------------------------------


def test_bulk_export_returns_ndjson_of_what_was_written(fhir: httpx.Client) -> None:
    patient = _created(fhir, _patient("export-subject"))
    goal = _created(fhir, _goal("export", patient["id"]))
    since = datetime.fromisoformat(goal["meta"]["lastUpdated"]) - timedelta(seconds=2)
    kickoff = fhir.get(
        "/$export",
        params={"_type": "Goal", "_since": since.isoformat(timespec="milliseconds")},
        headers={"Prefer": "respond-async"},
    )
    assert kickoff.status_code == 202, kickoff.text[:2000]
    status_url = kickoff.headers["Content-Location"]
    deadline = time.monotonic() + 180
    while True:
        poll = fhir.get(status_url)
        if poll.status_code == 200:
            break
        assert poll.status_code == 202, poll.text[:2000]
        assert time.monotonic() < deadline, "the export did not finish within 180 s"
        time.sleep(1.0)
    manifest = poll.json()
    assert manifest["error"] == []
    outputs = [o for o in manifest["output"] if o["type"] == "Goal"]
    assert outputs
    exported: list[Resource] = []
    for output in outputs:
        file = fhir.get(output["url"], headers={"Accept": "application/fhir+ndjson"})
        assert file.status_code == 200
        assert file.headers["Content-Type"].startswith("application/fhir+ndjson")
        exported += [json.loads(line) for line in file.text.splitlines() if line.strip()]
    assert all(r["resourceType"] == "Goal" for r in exported)
    assert goal["id"] in {r["id"] for r in exported}


# --- the manager's own failure paths (no server needed) ------------------------------------


def test_start_refuses_a_port_taken_by_another_program(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(sandbox.SandboxError, match="already in use"):
            sandbox.start(port, state_dir=tmp_path / "state")
    assert not (tmp_path / "state" / "server.pid").exists()


def test_stop_and_status_of_a_sandbox_never_started(tmp_path: Path) -> None:
    info = sandbox.status(8089, tmp_path)
    assert not info.running
    assert not info.healthy
    assert sandbox.stop(8089, tmp_path) is False
    assert sandbox.logs(10, 8089, tmp_path) == ""


def test_stop_ignores_a_pid_file_naming_another_process(tmp_path: Path) -> None:
    (tmp_path / "server.pid").write_text(json.dumps({"pid": 1, "port": 8089}))
    assert sandbox.stop(8089, tmp_path) is False
    assert not (tmp_path / "server.pid").exists()
