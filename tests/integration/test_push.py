"""Push against the real HAPI server: once, linked, idempotent, version-aware, crash-safe."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_bridge import model as m
from fhir_bridge.documents import read_records
from fhir_bridge.fhir import FhirClient
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import Pusher, PushSummary
from tests.helpers import fixture_files

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _namespace() -> str:
    return f"https://bridge.test/{uuid.uuid4().hex[:10]}"


def _records() -> list[m.Record]:
    return [r for path in fixture_files() for r in read_records(path)]


def _push(store: Store, url: str, ctx: MappingContext, **options: Any) -> PushSummary:
    async def run() -> PushSummary:
        async with FhirClient(url) as client:
            return await Pusher(store, client, "hapi", ctx, **options).push()

    return asyncio.run(run())


def _ours(fhir: httpx.Client, resource_type: str, namespace: str) -> list[dict[str, Any]]:
    """Every resource of a type carrying an identifier of this test's namespace."""
    found = []
    url: str | None = f"/{resource_type}?_count=200"
    while url:
        page = fhir.get(url, headers={"Cache-Control": "no-cache"}).json()
        for entry in page.get("entry", []):
            resource = entry["resource"]
            if any(
                i.get("system", "").startswith(namespace) for i in resource.get("identifier", [])
            ):
                found.append(resource)
        url = next(
            (link["url"] for link in page.get("link", []) if link["relation"] == "next"), None
        )
    return found


def _by_identifier(resources: list[dict[str, Any]], namespace: str) -> Counter[str]:
    return Counter(
        i["value"] for r in resources for i in r["identifier"] if i["system"].startswith(namespace)
    )


TYPES = (
    "Patient",
    "Condition",
    "Goal",
    "CareTeam",
    "ServiceRequest",
    "Task",
    "MedicationStatement",
    "CarePlan",
)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(database_url)
    yield s
    s.close()


Pushed = tuple[str, MappingContext, list[m.Record]]


@pytest.fixture
def pushed(store: Store, fhir_base_url: str) -> Pushed:
    """The fixtures stored and pushed once, under a namespace of this test's own."""
    ns = _namespace()
    ctx = MappingContext(namespace=ns, now=NOW)
    records = _records()
    store.put_records(records, ["hapi"], NOW)
    _push(store, fhir_base_url, ctx)
    return ns, ctx, records


def test_fixtures_land_once_linked_and_a_second_push_writes_nothing(
    store: Store, fhir_base_url: str, fhir: httpx.Client
) -> None:
    """Every resource once, references resolved to server ids; pushing again writes nothing."""
    ns = _namespace()
    ctx = MappingContext(namespace=ns, now=NOW)
    records = _records()
    store.put_records(records, ["hapi"], NOW)
    first = _push(store, fhir_base_url, ctx)
    assert first.failed == first.dead_lettered == 0
    assert first.created > len(records)  # records plus directory and Task resources
    server = {t: _ours(fhir, t, ns) for t in TYPES}
    for resource_type, resources in server.items():
        counts = _by_identifier(resources, ns)
        assert counts, resource_type
        assert max(counts.values()) == 1, f"duplicate {resource_type}"
    goals_by_id = {g["id"] for g in server["Goal"]}
    for plan in server["CarePlan"]:
        assert plan["subject"]["reference"].startswith("Patient/")
        for goal in plan.get("goal", []):
            assert goal["reference"].split("/")[1] in goals_by_id
        for activity in plan.get("activity", []):
            if "reference" in activity:
                assert activity["reference"]["reference"].startswith("ServiceRequest/")
    for request in server["ServiceRequest"]:
        assert request["subject"]["reference"].startswith("Patient/")
        for reason in request.get("reasonReference", []):
            assert reason["reference"].startswith("Condition/")
    versions = {
        (r["resourceType"], r["id"]): r["meta"]["versionId"] for rs in server.values() for r in rs
    }

    again = _push(store, fhir_base_url, ctx)
    assert again.created == again.updated == 0
    store.outbox.enqueue_unsynced("hapi", NOW)
    server_after = {t: _ours(fhir, t, ns) for t in TYPES}
    assert {
        (r["resourceType"], r["id"]): r["meta"]["versionId"]
        for rs in server_after.values()
        for r in rs
    } == versions


def test_changing_one_goal_is_exactly_one_update(
    store: Store, pushed: Pushed, fhir_base_url: str, fhir: httpx.Client
) -> None:
    """One changed record: one write, versionId + 1."""
    ns, ctx, records = pushed
    goal = next(r for r in records if isinstance(r, m.Goal))
    before = {g["id"]: g for g in _ours(fhir, "Goal", ns)}
    goal.achievement_status = m.GoalAchievement.improving
    store.put_records([goal], ["hapi"], NOW)
    summary = _push(store, fhir_base_url, ctx)
    assert (summary.created, summary.updated) == (0, 1)
    after = {g["id"]: g for g in _ours(fhir, "Goal", ns)}
    changed = [i for i in after if after[i]["meta"]["versionId"] != before[i]["meta"]["versionId"]]
    assert len(changed) == 1
    assert (
        int(after[changed[0]]["meta"]["versionId"])
        == int(before[changed[0]]["meta"]["versionId"]) + 1
    )
    assert after[changed[0]]["achievementStatus"]["coding"][0]["code"] == "improving"


def test_clinician_extension_and_note_survive_our_next_update(
    store: Store, pushed: Pushed, fhir_base_url: str, fhir: httpx.Client
) -> None:
    """What a clinician adds on the server is kept when we update the resource."""
    ns, ctx, records = pushed
    goal = next(r for r in records if isinstance(r, m.Goal))
    (on_server,) = [
        g for g in _ours(fhir, "Goal", ns) if any(i["value"] == goal.id for i in g["identifier"])
    ]
    extension = {
        "url": "http://example.org/fhir/StructureDefinition/clinic-flag",
        "valueString": "review",
    }
    on_server.setdefault("extension", []).append(extension)
    on_server.setdefault("note", []).append({"text": "Discussed at clinic, patient motivated"})
    edited = fhir.put(f"/Goal/{on_server['id']}", json=on_server)
    assert edited.status_code == 200, edited.text

    goal.priority = m.GoalPriority.low
    store.put_records([goal], ["hapi"], NOW)
    summary = _push(store, fhir_base_url, ctx)
    assert summary.updated == 1
    assert summary.failed == summary.dead_lettered == 0
    final = fhir.get(f"/Goal/{on_server['id']}", headers={"Cache-Control": "no-cache"}).json()
    assert extension in final["extension"]
    assert {"text": "Discussed at clinic, patient motivated"} in final["note"]
    assert final["priority"]["coding"][0]["code"] == "low-priority"


def test_killed_push_runs_leave_exactly_one_copy(
    tmp_path: Path, database_url: str, fhir_base_url: str, fhir: httpx.Client
) -> None:
    """SIGKILL the push process at several points; after a final run, one copy of everything."""
    ns = _namespace()
    env = {
        **os.environ,
        "FHIR_BRIDGE_NAMESPACE": ns,
        "FHIR_BRIDGE_DATABASE_URL": database_url,
        "FHIR_BRIDGE_CONFIG": str(tmp_path / "none.toml"),
    }
    (tmp_path / "none.toml").write_text("")
    exe = str(Path(sys.executable).parent / "fhir-bridge")
    loaded = subprocess.run(
        [exe, "load", *map(str, fixture_files())],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr
    for delay in (0.8, 1.2, 1.6, 2.0, 2.6):
        process = subprocess.Popen(
            [exe, "push", "--fhir-url", fhir_base_url],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
    final = subprocess.run(
        [exe, "push", "--fhir-url", fhir_base_url],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert final.returncode == 0, final.stderr
    expected = {
        "Patient": sum(1 for r in _records() if isinstance(r, m.Patient)),
        "Goal": sum(1 for r in _records() if isinstance(r, m.Goal)),
        "CarePlan": sum(1 for r in _records() if isinstance(r, m.CarePlan)),
    }
    for resource_type, count in expected.items():
        copies = _by_identifier(_ours(fhir, resource_type, ns), ns)
        assert len(copies) == count, resource_type
        assert set(copies.values()) == {1}, f"duplicate {resource_type}"


def test_each_transaction_is_signed_with_a_provenance_of_its_writes(
    store: Store, fhir_base_url: str, fhir: httpx.Client
) -> None:
    """HAPI takes the Provenance inside the transaction and resolves its targets to ids."""
    ns = _namespace()
    ctx = MappingContext(namespace=ns, now=NOW)
    records = read_records(fixture_files()[0])
    store.put_records(records, ["hapi"], NOW)
    summary = _push(store, fhir_base_url, ctx)
    assert summary.failed == summary.dead_lettered == 0
    assert store.refusals.of("hapi") == []
    (goal, *_) = _ours(fhir, "Goal", ns)
    signed = fhir.get(
        f"/Provenance?target=Goal/{goal['id']}", headers={"Cache-Control": "no-cache"}
    ).json()
    (provenance,) = [e["resource"] for e in signed.get("entry", [])]
    assert all(
        t["reference"].split("/")[0] in (*TYPES, "Practitioner", "Organization", "PractitionerRole")
        for t in provenance["target"]
    )
    assert not any(t["reference"].startswith("urn:") for t in provenance["target"])
    assert [a["type"]["coding"][0]["code"] for a in provenance["agent"]] == [
        "author",
        "transmitter",
    ]
    assert provenance["agent"][1]["onBehalfOf"]["identifier"]["value"] == ns
