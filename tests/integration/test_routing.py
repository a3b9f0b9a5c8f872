"""Routing against three real HAPI servers: two hospitals and a community organisation.

Patient A (Rivera) is enrolled with hospital one only, patient B (Nguyen) with hospital two
only; B has a referral to the Eastside food pantry, whose own server is the community one.
After a push to each: hospital two holds nothing about A (searched, and its request log names
none of A's identifiers), and the community server holds the pantry's ServiceRequest + Task,
B's Patient and the directory resources they name, and nothing else.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_bridge import model as m
from fhir_bridge import sandbox
from fhir_bridge.config import ConnectionConfig, OrganizationConfig, Settings
from fhir_bridge.documents import read_records
from fhir_bridge.store import Store
from fhir_bridge.sync import (
    PushSummary,
    pull_connection,
    push_connection,
    resolve_connection,
    routing_of,
)
from tests.helpers import FIXTURES

A, B = "pat-rivera", "pat-nguyen"
PANTRY = "org-eastside-food-pantry"
DIRECTORY = {"Organization", "Practitioner", "PractitionerRole"}
NOW = datetime.now(UTC)
HEADERS = {"Accept": "application/fhir+json", "Cache-Control": "no-cache"}


@pytest.fixture
def token() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
def settings(
    tmp_path: Path, fhir_base_url: str, hospital_two_url: str, community_url: str, token: str
) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'routing.db'}",
        namespace=f"https://bridge.test/routing-{token}",
        connections={
            "hospital-one": ConnectionConfig(
                base_url=fhir_base_url, mrn_system="urn:oid:2.16.840.1.113883.19.5.1"
            ),
            "hospital-two": ConnectionConfig(base_url=hospital_two_url),
            "community": ConnectionConfig(
                base_url=community_url, organization=OrganizationConfig(id=PANTRY)
            ),
        },
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = Store(settings.database_url)
    yield s
    s.close()


def _push(store: Store, settings: Settings, name: str) -> PushSummary:
    target = resolve_connection(settings, name, None)
    return asyncio.run(push_connection(store, target, settings))


def _ours(url: str, resource_type: str, namespace: str) -> list[dict[str, Any]]:
    """The resources of one type on a server carrying an identifier of our namespace."""
    found: list[dict[str, Any]] = []
    with httpx.Client(headers=HEADERS, timeout=120.0) as client:
        next_url: str | None = f"{url}/{resource_type}?_count=200"
        while next_url:
            page = client.get(next_url).json()
            for entry in page.get("entry", []):
                resource = entry["resource"]
                if any(
                    str(i.get("system", "")).startswith(namespace)
                    for i in resource.get("identifier", [])
                ):
                    found.append(resource)
            next_url = next(
                (x["url"] for x in page.get("link", []) if x["relation"] == "next"), None
            )
    return found


def _our_value(resource: dict[str, Any]) -> str:
    return str(resource["identifier"][-1]["value"])


def _log_size(port: int) -> int:
    log = sandbox.instance_dir(port) / "server.log"
    return log.stat().st_size if log.exists() else 0


def _log_since(port: int, offset: int) -> str:
    log = sandbox.instance_dir(port) / "server.log"
    with log.open("rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


TYPES = ("Patient", "CarePlan", "Goal", "Condition", "ServiceRequest", "Task", "CareTeam")


def test_each_patient_reaches_only_where_it_belongs(
    store: Store, settings: Settings, hospital_two_url: str, community_url: str, token: str
) -> None:
    records = read_records(FIXTURES / "cc-diabetes-heart-failure.json") + read_records(
        FIXTURES / "sdoh-food-transportation.json"
    )
    store.put_records(records, routing_of(settings), NOW)
    store.enrolments.enrol(A, "hospital-one", "MRN-A-1", NOW)
    store.enrolments.enrol(B, "hospital-two", None, NOW)
    two_port = httpx.URL(hospital_two_url).port or 80
    log_offset = _log_size(two_port)

    for name in ("hospital-one", "hospital-two", "community"):
        pushed = _push(store, settings, name)
        assert pushed.failed == pushed.dead_lettered == 0, name
    requests = _log_since(two_port, log_offset)  # read before our own searches are logged

    one_url = settings.connections["hospital-one"].base_url
    ns = settings.namespace
    # hospital one: A, whole; nothing of B
    (patient_a,) = _ours(one_url, "Patient", ns)
    assert _our_value(patient_a) == A
    subjects = {g["subject"]["reference"] for g in _ours(one_url, "Goal", ns)}
    subjects |= {c["subject"]["reference"] for c in _ours(one_url, "CarePlan", ns)}
    assert subjects == {f"Patient/{patient_a['id']}"}
    assert not [r for t in TYPES for r in _ours(one_url, t, ns) if "nguyen" in _our_value(r)]

    # hospital two: B only; nothing names A, neither on the server nor in its request log
    on_two = [r for t in TYPES for r in _ours(hospital_two_url, t, ns)]
    assert {_our_value(r) for r in on_two if r["resourceType"] == "Patient"} == {B}
    assert not [r for r in on_two if "rivera" in _our_value(r)]
    a_identifier = f"{ns}/patient|{A}"
    with httpx.Client(headers=HEADERS, timeout=60.0) as client:
        found = client.get(f"{hospital_two_url}/Patient", params={"identifier": a_identifier})
    assert found.json().get("total", len(found.json().get("entry", []))) == 0
    # B's writes reached it (a transaction: the log names no identifiers, only the URL)
    assert re.search(rf"POST {re.escape(hospital_two_url)}/? ", requests)
    ours = [line for line in requests.splitlines() if token in line]
    assert not [line for line in ours if re.search("rivera", line, re.IGNORECASE)]

    # the community organisation: the pantry's referral, B's Patient, the directory
    on_community = {t: _ours(community_url, t, ns) for t in (*TYPES, *DIRECTORY)}
    held = {t for t, found in on_community.items() if found}
    assert held - DIRECTORY == {"Patient", "ServiceRequest", "Task"}
    (request,) = on_community["ServiceRequest"]
    (task,) = on_community["Task"]
    (patient_b,) = on_community["Patient"]
    assert _our_value(request) == "ref-nguyen-pantry"
    assert _our_value(patient_b) == B
    assert "reasonReference" not in request
    assert task["focus"]["reference"] == f"ServiceRequest/{request['id']}"
    assert task["for"]["reference"] == f"Patient/{patient_b['id']}"
    assert task["owner"]["reference"].startswith("Organization/")

    # the status loop runs from there: the organisation starts work, a pull brings it back
    task["status"] = "in-progress"
    with httpx.Client(headers=HEADERS, timeout=60.0) as client:
        saved = client.put(
            f"{community_url}/Task/{task['id']}",
            json=task,
            headers={"Content-Type": "application/fhir+json"},
        )
    assert saved.status_code == 200, saved.text
    target = resolve_connection(settings, "community", None)
    pulled = asyncio.run(pull_connection(store, target, settings, patient_id=B))
    assert pulled.failed == 0
    referral = store.records.get("referral", "ref-nguyen-pantry")
    assert isinstance(referral, m.Referral)
    assert referral.tracking is not None
    assert referral.tracking.status == m.TrackingStatus.in_progress
    assert referral.reasons  # what the pantry never saw is kept locally

    # hospital two has B's other referrals' Tasks, but not the pantry's (it lives there)
    tasks_two = {_our_value(t) for t in on_two if t["resourceType"] == "Task"}
    assert "ref-nguyen-pantry" not in tasks_two
    assert tasks_two == {"ref-nguyen-rides", "ref-nguyen-snap"}

    # unenrolling A from hospital one: what stays there is said, nothing more is sent
    gone = store.enrolments.unenrol(A, "hospital-one")
    assert ("Patient", patient_a["id"]) in {
        (x.resource_type, x.resource_id) for x in gone.remaining
    }
    again = _push(store, settings, "hospital-one")
    assert again.created == again.updated == 0
