"""The EHR-like sandbox profiles really refuse, and their CapabilityStatements say so.

``epic_like`` (8090) and ``oracle_like`` (8091) are HAPI sandboxes started with
``--profile epic-like`` / ``oracle-like`` (docs/sandbox.md), SMART required: requests carry a token
Keycloak gives a test client allowed every type (``full_access``; the profile's own client reads
CarePlan and Goal only: its writes to them would be the scope's 403 before the profile's 405).
Every refusal must be an HTTP status with an OperationOutcome, also as a batch entry's response;
what the server refuses must also be what its CapabilityStatement declares.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.conftest import SmartSandbox
from tests.integration.smart import SmartClient

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:12]
SYSTEM = "urn:fhir-bridge:test:profiles"
CLINICIAN = {"X-Sandbox-Clinician": "true"}
FHIR_JSON = "application/fhir+json"

Resource = dict[str, Any]


def _client(target: SmartSandbox, access: SmartClient) -> httpx.Client:
    return httpx.Client(
        base_url=target.base_url,
        auth=access.auth(),
        headers={"Accept": FHIR_JSON, "Content-Type": FHIR_JSON},
        timeout=httpx.Timeout(60.0, connect=10.0),
    )


@pytest.fixture(scope="module")
def epic(epic_like: SmartSandbox, full_access: SmartClient) -> Iterator[httpx.Client]:
    with _client(epic_like, full_access) as client:
        yield client


@pytest.fixture(scope="module")
def oracle(oracle_like: SmartSandbox, full_access: SmartClient) -> Iterator[httpx.Client]:
    with _client(oracle_like, full_access) as client:
        yield client


def _identifier(label: str) -> Resource:
    return {"system": SYSTEM, "value": f"{RUN}-{label}"}


def _token(label: str) -> str:
    return f"{SYSTEM}|{RUN}-{label}"


def _patient(label: str) -> Resource:
    return {"resourceType": "Patient", "identifier": [_identifier(label)], "active": True}


def _goal(label: str, patient_id: str) -> Resource:
    return {
        "resourceType": "Goal",
        "identifier": [_identifier(label)],
        "lifecycleStatus": "active",
        "description": {"text": f"profile test goal {label}"},
        "subject": {"reference": f"Patient/{patient_id}"},
    }


def _task(label: str, patient_id: str) -> Resource:
    return {
        "resourceType": "Task",
        "identifier": [_identifier(label)],
        "status": "requested",
        "intent": "order",
        "for": {"reference": f"Patient/{patient_id}"},
    }


def _create(client: httpx.Client, resource: Resource, **headers: str) -> Resource:
    response = client.post(f"/{resource['resourceType']}", json=resource, headers=headers)
    assert response.status_code == 201, response.text
    created: Resource = response.json()
    return created


def _refusal(response: httpx.Response, status: int, words: str) -> str:
    """The response is ``status`` with an OperationOutcome whose diagnostics hold ``words``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    text = " ".join(str(issue.get("diagnostics", "")) for issue in body["issue"])
    assert words in text, text
    return text


def _entry_refusal(entry: Resource, status: int, words: str) -> None:
    assert entry["response"]["status"].startswith(str(status)), entry
    outcome = entry["response"]["outcome"]
    assert outcome["resourceType"] == "OperationOutcome"
    text = " ".join(str(issue.get("diagnostics", "")) for issue in outcome["issue"])
    assert words in text, text


def _count(client: httpx.Client, type_: str, label: str) -> int:
    response = client.get(f"/{type_}", params={"identifier": _token(label), "_summary": "count"})
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def _capabilities(client: httpx.Client) -> tuple[list[str], dict[str, Resource]]:
    response = client.get("/metadata")
    assert response.status_code == 200, response.text
    rest = response.json()["rest"][0]
    system = [i["code"] for i in rest.get("interaction", [])]
    return system, {r["type"]: r for r in rest["resource"]}


def _interactions(resource: Resource) -> set[str]:
    return {i["code"] for i in resource["interaction"]}


def _search_params(resource: Resource) -> set[str]:
    return {p["name"] for p in resource.get("searchParam", [])}


def _batch(client: httpx.Client, entries: list[Resource], **headers: str) -> list[Resource]:
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": entries}
    response = client.post("", json=bundle, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "batch-response"
    assert len(body["entry"]) == len(entries)
    result: list[Resource] = body["entry"]
    return result


# --- epic-like --------------------------------------------------------------------------------


def test_epic_like_capability_statement_says_what_it_refuses(epic: httpx.Client) -> None:
    system, resources = _capabilities(epic)
    assert "transaction" not in system
    assert "batch" in system
    for type_ in ("CarePlan", "Goal"):
        assert _interactions(resources[type_]) == {"read", "search-type"}
        assert resources[type_]["conditionalUpdate"] is False
    for type_ in ("ServiceRequest", "Task", "Patient"):
        assert {"create", "update", "read", "search-type"} <= _interactions(resources[type_])
    for type_ in ("CarePlan", "Goal", "ServiceRequest", "Task"):
        assert "_lastUpdated" not in _search_params(resources[type_])
    assert "_lastUpdated" in _search_params(resources["Patient"])


def test_epic_like_refuses_writes_to_read_only_types(epic: httpx.Client) -> None:
    patient = _create(epic, _patient("epic-ro"))
    goal = _goal("epic-ro-goal", patient["id"])

    response = epic.post("/Goal", json=goal)
    _refusal(response, 405, "Goal is read-only")
    assert response.headers["Allow"] == "GET"
    conditional = epic.put(
        "/CarePlan",
        params={"identifier": _token("epic-ro-cp")},
        json={
            "resourceType": "CarePlan",
            "identifier": [_identifier("epic-ro-cp")],
            "status": "active",
            "intent": "plan",
            "subject": {"reference": f"Patient/{patient['id']}"},
        },
    )
    _refusal(conditional, 405, "CarePlan is read-only")
    assert _count(epic, "Goal", "epic-ro-goal") == 0
    assert _count(epic, "CarePlan", "epic-ro-cp") == 0

    # what a clinician enters in the EHR itself is there to read, but not to change over the API
    stored = _create(epic, goal, **CLINICIAN)
    read = epic.get(f"/Goal/{stored['id']}")
    assert read.status_code == 200
    changed = {**read.json(), "lifecycleStatus": "cancelled"}
    _refusal(epic.put(f"/Goal/{stored['id']}", json=changed), 405, "update of Goal")
    _refusal(epic.delete(f"/Goal/{stored['id']}"), 405, "delete of Goal")
    patch = [{"op": "replace", "path": "/lifecycleStatus", "value": "cancelled"}]
    patched = epic.patch(
        f"/Goal/{stored['id']}",
        content=httpx.Request("PATCH", "/", json=patch).content,
        headers={"Content-Type": "application/json-patch+json"},
    )
    _refusal(patched, 405, "patch of Goal")
    _refusal(epic.get(f"/Goal/{stored['id']}/_history/1"), 400, "vread or history of Goal")
    _refusal(epic.get(f"/Goal/{stored['id']}/_history"), 400, "vread or history of Goal")
    _refusal(epic.get("/Goal/_history"), 400, "history of Goal is not supported")
    task = _create(epic, _task("epic-ro-task", patient["id"]))
    assert epic.get(f"/Task/{task['id']}/_history").status_code == 200  # other types keep it
    assert epic.get(f"/Goal/{stored['id']}").json()["lifecycleStatus"] == "active"


def test_epic_like_takes_service_requests_and_tasks(epic: httpx.Client) -> None:
    patient = _create(epic, _patient("epic-rw"))
    task = _create(epic, _task("epic-rw-task", patient["id"]))
    task["status"] = "accepted"
    updated = epic.put(f"/Task/{task['id']}", json=task)
    assert updated.status_code == 200, updated.text
    service_request = {
        "resourceType": "ServiceRequest",
        "identifier": [_identifier("epic-rw-sr")],
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient['id']}"},
    }
    written = epic.put(
        "/ServiceRequest", params={"identifier": _token("epic-rw-sr")}, json=service_request
    )
    assert written.status_code == 201, written.text


def test_epic_like_refuses_last_updated_on_care_searches(epic: httpx.Client) -> None:
    patient = _create(epic, _patient("epic-lu"))
    _create(epic, _goal("epic-lu-goal", patient["id"]), **CLINICIAN)
    for type_ in ("CarePlan", "Goal", "ServiceRequest", "Task"):
        response = epic.get(f"/{type_}", params={"_lastUpdated": "gt2020-01-01"})
        _refusal(response, 400, f"_lastUpdated is not supported for {type_}")
    assert epic.get("/Patient", params={"_lastUpdated": "gt2020-01-01"}).status_code == 200
    # the other way to find changes: per patient
    by_patient = epic.get("/Goal", params={"subject": f"Patient/{patient['id']}"})
    assert by_patient.status_code == 200
    assert by_patient.json()["total"] == 1


def test_epic_like_refuses_transactions_and_writes_nothing(epic: httpx.Client) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": _patient("epic-tx"), "request": {"method": "POST", "url": "Patient"}},
        ],
    }
    _refusal(epic.post("", json=bundle), 405, "transactions are not supported")
    assert _count(epic, "Patient", "epic-tx") == 0


def test_epic_like_batch_refuses_entry_by_entry(epic: httpx.Client) -> None:
    patient = _create(epic, _patient("epic-batch"))
    entries = [
        {"resource": _patient("epic-batch-2"), "request": {"method": "POST", "url": "Patient"}},
        {
            "resource": _goal("epic-batch-goal", patient["id"]),
            "request": {"method": "PUT", "url": f"Goal?identifier={_token('epic-batch-goal')}"},
        },
        {"request": {"method": "GET", "url": "Task?_lastUpdated=gt2020-01-01"}},
        {
            "resource": _task("epic-batch-task", patient["id"]),
            "request": {"method": "POST", "url": "Task"},
        },
    ]
    answers = _batch(epic, entries)
    assert answers[0]["response"]["status"].startswith("201")
    _entry_refusal(answers[1], 405, "Goal is read-only")
    _entry_refusal(answers[2], 400, "_lastUpdated is not supported for Task")
    assert answers[3]["response"]["status"].startswith("201")
    assert _count(epic, "Goal", "epic-batch-goal") == 0
    assert _count(epic, "Patient", "epic-batch-2") == 1


# --- oracle-like ------------------------------------------------------------------------------


def test_oracle_like_capability_statement_says_what_it_refuses(oracle: httpx.Client) -> None:
    system, resources = _capabilities(oracle)
    assert "transaction" not in system
    assert "batch" in system
    for type_ in ("Patient", "CarePlan", "Goal", "ServiceRequest", "Task"):
        resource = resources[type_]
        assert resource["conditionalCreate"] is False
        assert resource["conditionalUpdate"] is False
        assert resource["conditionalDelete"] == "not-supported"
        assert resource["versioning"] == "versioned-update"
        assert resource["updateCreate"] is False
        assert {"create", "update", "read", "search-type"} <= _interactions(resource)
        assert "_lastUpdated" in _search_params(resource)


def test_oracle_like_refuses_conditional_writes(oracle: httpx.Client) -> None:
    patient = _create(oracle, _patient("ora-cond"))
    goal = _goal("ora-cond-goal", patient["id"])
    conditional_update = oracle.put(
        "/Goal", params={"identifier": _token("ora-cond-goal")}, json=goal
    )
    _refusal(conditional_update, 400, "conditional update of Goal is not supported")
    conditional_create = oracle.post(
        "/Goal", json=goal, headers={"If-None-Exist": f"identifier={_token('ora-cond-goal')}"}
    )
    _refusal(conditional_create, 400, "conditional create of Goal is not supported")
    assert _count(oracle, "Goal", "ora-cond-goal") == 0
    # search, then write by id: what the server wants
    created = _create(oracle, goal)
    assert _count(oracle, "Goal", "ora-cond-goal") == 1
    assert created["meta"]["versionId"] == "1"


def test_oracle_like_requires_if_match_on_update(oracle: httpx.Client) -> None:
    patient = _create(oracle, _patient("ora-ifm"))
    goal = _create(oracle, _goal("ora-ifm-goal", patient["id"]))
    goal["lifecycleStatus"] = "completed"

    _refusal(oracle.put(f"/Goal/{goal['id']}", json=goal), 412, "If-Match is required")
    assert oracle.get(f"/Goal/{goal['id']}").json()["lifecycleStatus"] == "active"

    ok = oracle.put(f"/Goal/{goal['id']}", json=goal, headers={"If-Match": 'W/"1"'})
    assert ok.status_code == 200, ok.text
    assert ok.json()["meta"]["versionId"] == "2"
    stale = oracle.put(f"/Goal/{goal['id']}", json=goal, headers={"If-Match": 'W/"1"'})
    assert stale.status_code in (409, 412), stale.text  # HAPI answers a stale version 409


def test_oracle_like_refuses_transactions(oracle: httpx.Client) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": _patient("ora-tx"), "request": {"method": "POST", "url": "Patient"}}
        ],
    }
    _refusal(oracle.post("", json=bundle), 405, "transactions are not supported")
    assert _count(oracle, "Patient", "ora-tx") == 0


def test_oracle_like_batch_refuses_entry_by_entry(oracle: httpx.Client) -> None:
    patient = _create(oracle, _patient("ora-batch"))
    goal = _create(oracle, _goal("ora-batch-goal", patient["id"]))
    goal["lifecycleStatus"] = "on-hold"
    entries = [
        {
            "resource": _goal("ora-batch-cond", patient["id"]),
            "request": {"method": "PUT", "url": f"Goal?identifier={_token('ora-batch-cond')}"},
        },
        {
            "resource": _goal("ora-batch-ine", patient["id"]),
            "request": {
                "method": "POST",
                "url": "Goal",
                "ifNoneExist": f"identifier={_token('ora-batch-ine')}",
            },
        },
        {"resource": goal, "request": {"method": "PUT", "url": f"Goal/{goal['id']}"}},
        {
            "resource": goal,
            "request": {"method": "PUT", "url": f"Goal/{goal['id']}", "ifMatch": 'W/"1"'},
        },
        {
            "resource": _task("ora-batch-task", patient["id"]),
            "request": {"method": "POST", "url": "Task"},
        },
    ]
    answers = _batch(oracle, entries)
    _entry_refusal(answers[0], 400, "conditional update of Goal")
    _entry_refusal(answers[1], 400, "conditional create of Goal")
    _entry_refusal(answers[2], 412, "If-Match is required")
    assert answers[3]["response"]["status"].startswith("200"), answers[3]
    assert answers[4]["response"]["status"].startswith("201"), answers[4]
    assert _count(oracle, "Goal", "ora-batch-cond") == 0
    assert _count(oracle, "Goal", "ora-batch-ine") == 0
    assert oracle.get(f"/Goal/{goal['id']}").json()["lifecycleStatus"] == "on-hold"
