"""Local deletions against the real HAPI server: entered-in-error with If-Match, a delete racing
a clinician's edit, a crash between HAPI's answer and our bookkeeping, and the CLI's
``delete`` with push killed mid-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_bridge.documents import read_records
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import resolve_conflict
from tests.helpers import FIXTURES
from tests.integration.sync_calls import NO_CACHE, find_by_identifier, push

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
FIXTURE = FIXTURES / "cc-diabetes-heart-failure.json"
GOAL = "goal-rivera-a1c"
EIE = "entered-in-error"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(database_url)
    yield s
    s.close()


def _goal(fhir: httpx.Client, namespace: str) -> dict[str, Any]:
    return find_by_identifier(fhir, "Goal", f"{namespace}/goal", GOAL)


def _statuses(fhir: httpx.Client, goal_id: str) -> list[str]:
    history = fhir.get(f"/Goal/{goal_id}/_history", headers=NO_CACHE)
    return [e["resource"]["lifecycleStatus"] for e in history.json().get("entry", [])]


@pytest.fixture
def pushed(store: Store, fhir_base_url: str) -> tuple[str, MappingContext]:
    """One fixture patient pushed once, under a namespace of this test's own."""
    ns = f"https://bridge.test/{uuid.uuid4().hex[:10]}"
    ctx = MappingContext(namespace=ns, now=NOW)
    store.put_records(read_records(FIXTURE), ["hapi"], NOW)
    first = push(store, fhir_base_url, ctx)
    assert first.failed == first.dead_lettered == 0
    return ns, ctx


def test_a_goal_deleted_here_is_entered_in_error_on_hapi(
    store: Store, pushed: tuple[str, MappingContext], fhir_base_url: str, fhir: httpx.Client
) -> None:
    ns, ctx = pushed
    before = _goal(fhir, ns)
    store.delete_record("goal", GOAL, NOW)
    summary = push(store, fhir_base_url, ctx)
    assert (summary.deleted, summary.failed, summary.conflicts) == (1, 0, 0)
    after = _goal(fhir, ns)
    assert after["lifecycleStatus"] == EIE
    assert int(after["meta"]["versionId"]) == int(before["meta"]["versionId"]) + 1
    assert after["description"] == before["description"]
    again = push(store, fhir_base_url, ctx)
    assert again.deleted == 0
    assert _goal(fhir, ns)["meta"]["versionId"] == after["meta"]["versionId"]


def test_a_patient_deleted_with_its_records_leaves_them_entered_in_error_on_hapi(
    store: Store, pushed: tuple[str, MappingContext], fhir_base_url: str, fhir: httpx.Client
) -> None:
    """HAPI keeps a Patient that other resources reference (its referential integrity on
    delete): the records are entered in error, the Patient's entry fails with HAPI's reason."""
    ns, ctx = pushed
    deleted = store.delete_record("patient", "pat-rivera", NOW, with_records=True)
    assert deleted is not None
    assert deleted.records > 0
    summary = push(store, fhir_base_url, ctx)
    assert _goal(fhir, ns)["lifecycleStatus"] == EIE
    assert (summary.failed, summary.dead_lettered) == (1, 0)  # retried on the schedule
    assert summary.deleted >= deleted.records
    later = datetime.now(UTC) + timedelta(days=1)
    (waiting,) = store.outbox.due("hapi", later, deletions_only=True)
    assert (waiting.kind, waiting.record_id) == ("patient", "pat-rivera")
    assert "reference" in (waiting.last_error or "")
    patient = find_by_identifier(fhir, "Patient", f"{ns}/patient", "pat-rivera")
    assert patient["id"]  # still there


def test_a_delete_racing_a_clinicians_edit_is_a_conflict(
    store: Store, pushed: tuple[str, MappingContext], fhir_base_url: str, fhir: httpx.Client
) -> None:
    ns, ctx = pushed
    goal = _goal(fhir, ns)
    goal["note"] = [{"text": "keep this goal: discussed with the patient"}]
    edited = fhir.put(f"/Goal/{goal['id']}", json=goal)
    assert edited.status_code == 200, edited.text
    store.delete_record("goal", GOAL, NOW)

    summary = push(store, fhir_base_url, ctx)

    assert (summary.conflicts, summary.deleted) == (1, 0)
    assert _goal(fhir, ns)["lifecycleStatus"] != EIE
    (conflict,) = [c for c in store.conflicts.find() if c.record_id == GOAL]
    assert conflict.fields == ["deleted"]
    assert conflict.remote["notes"][0]["text"].startswith("keep this goal")
    resolve_conflict(store, conflict.id, "local", None, NOW)
    settled = push(store, fhir_base_url, ctx)
    assert settled.deleted == 1
    final = _goal(fhir, ns)
    assert final["lifecycleStatus"] == EIE
    assert final["note"] == goal["note"]  # the clinician's note stays with it


def test_a_crash_between_hapis_answer_and_the_bookkeeping_resends_safely(
    store: Store, pushed: tuple[str, MappingContext], fhir_base_url: str, fhir: httpx.Client
) -> None:
    ns, ctx = pushed
    store.delete_record("goal", GOAL, NOW)
    record_deletions = store.record_deletions

    def killed(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed before the bookkeeping")

    store.record_deletions = killed  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        push(store, fhir_base_url, ctx)
    store.record_deletions = record_deletions  # type: ignore[method-assign]
    goal = _goal(fhir, ns)
    assert goal["lifecycleStatus"] == EIE

    summary = push(store, fhir_base_url, ctx)

    assert (summary.conflicts, summary.failed) == (0, 0)
    assert _goal(fhir, ns)["meta"]["versionId"] == goal["meta"]["versionId"]
    assert _statuses(fhir, goal["id"]).count(EIE) == 1
    assert store.conflicts.find() == []
    assert store.outbox.due("hapi", datetime.now(UTC)) == []


class Cli:
    """The ``fhir-bridge`` command under a namespace of its own, on the test's store."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.namespace = f"https://bridge.test/{uuid.uuid4().hex[:10]}"
        (tmp_path / "none.toml").write_text("")
        self.env = {
            **os.environ,
            "FHIR_BRIDGE_NAMESPACE": self.namespace,
            "FHIR_BRIDGE_DATABASE_URL": database_url,
            "FHIR_BRIDGE_CONFIG": str(tmp_path / "none.toml"),
        }
        self.exe = str(Path(sys.executable).parent / "fhir-bridge")

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.exe, *args], env=self.env, capture_output=True, text=True, check=False
        )


def test_cli_dry_run_shows_what_a_deletion_would_do_and_sends_nothing(
    tmp_path: Path, database_url: str, fhir_base_url: str, fhir: httpx.Client
) -> None:
    run = Cli(tmp_path, database_url)
    assert run("load", str(FIXTURE)).returncode == 0
    assert run("push", "--fhir-url", fhir_base_url).returncode == 0
    assert run("delete", "goal", GOAL).returncode == 0
    before = _goal(fhir, run.namespace)
    dry = run("push", "--fhir-url", fhir_base_url, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    (line,) = [x for x in dry.stdout.splitlines() if "entered-in-error" in x]
    assert "Goal" in line
    assert GOAL in line
    assert _goal(fhir, run.namespace)["meta"] == before["meta"]  # nothing sent
    assert run("push", "--fhir-url", fhir_base_url).returncode == 0
    assert _goal(fhir, run.namespace)["lifecycleStatus"] == EIE


def test_cli_delete_then_killed_pushes_leave_one_entered_in_error(
    tmp_path: Path, database_url: str, fhir_base_url: str, fhir: httpx.Client
) -> None:
    """``fhir-bridge delete``, then push SIGKILLed at several points, then a final push."""
    run = Cli(tmp_path, database_url)
    exe, env, ns = run.exe, run.env, run.namespace
    assert run("load", str(FIXTURE)).returncode == 0
    first = run("push", "--fhir-url", fhir_base_url)
    assert first.returncode == 0, first.stderr
    deleted = run("delete", "goal", GOAL)
    assert deleted.returncode == 0, deleted.stderr
    assert "queued for" in deleted.stdout
    assert run("delete", "goal", GOAL).returncode == 1  # deleted already
    for delay in (0.6, 0.9, 1.2):
        process = subprocess.Popen(
            [exe, "push", "--fhir-url", fhir_base_url],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
    final = run("push", "--fhir-url", fhir_base_url)
    assert final.returncode == 0, final.stderr
    goal = _goal(fhir, ns)
    assert goal["lifecycleStatus"] == EIE
    assert _statuses(fhir, goal["id"]).count(EIE) == 1
