"""Several `fhir-bridge worker` processes on one PostgreSQL database, pushing to HAPI.

Real processes, real PostgreSQL, real HAPI: workers are SIGKILLed at random, paused past
their lease, capped fleet-wide, throttled by one server, and the database is restarted under
them. Nothing is lost, nothing is duplicated, no record's changes apply out of order.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fhir_bridge.store import Lease, QueueDepth, Store
from tests.integration.fleet import (
    EXE,
    NOW,
    Fleet,
    Relay,
    ThrottlingServer,
    drain,
    goal,
    out_of_order,
    panel,
    pick,
    server_copies,
    serving,
    worker_env,
    write_config,
)

WORKER_ARGS = ("--push-every", "0.5", "--pull-every", "0", "--lease-seconds", "5")


@pytest.fixture
def store(postgres_url: str) -> Iterator[Store]:
    s = Store(postgres_url)
    yield s
    s.close()


def _namespace() -> str:
    return f"https://bridge.test/{uuid.uuid4().hex[:10]}"


def _check_server(store: Store, fhir_base_url: str, ns: str, patients: int, goals: int) -> None:
    """One copy per identifier on the server, each with the record's latest content."""
    people = server_copies(fhir_base_url, "Patient", f"{ns}/patient")
    assert len(people) == patients
    assert max(len(v) for v in people.values()) == 1, "a duplicated Patient"
    copies = server_copies(fhir_base_url, "Goal", f"{ns}/goal")
    assert len(copies) == patients * goals
    duplicated = [k for k, v in copies.items() if len(v) > 1]
    assert duplicated == []
    stale = []
    for record_id, (resource,) in copies.items():
        record = store.records.get("goal", record_id)
        assert record is not None
        if resource["description"]["text"] != record.description.text:  # type: ignore[attr-defined]
            stale.append(record_id)
    assert stale == []


def test_kill_loop_four_workers_lose_and_duplicate_nothing(
    tmp_path: Path, postgres_url: str, store: Store, fhir_base_url: str
) -> None:
    """2,000 resources, 4 workers, one SIGKILLed every 1-3 s (30 kills) while records keep
    changing; after a drain every entry is done, one copy each, latest content, in order."""
    patients, goals = 400, 4  # 2,000 resources
    ns = _namespace()
    write_config(tmp_path / "fhir-bridge.toml", {"hapi": fhir_base_url})
    fleet = Fleet(tmp_path, worker_env(tmp_path, postgres_url, ns), *WORKER_ARGS)
    store.put_records(panel(patients, goals), ["hapi"], NOW)
    versions: dict[tuple[str, int], int] = {}
    kills = 0
    try:
        for slot in range(4):
            fleet.start(slot)
        while kills < 30:
            until = time.monotonic() + random.uniform(1.0, 3.0)  # noqa: S311
            while time.monotonic() < until:  # records keep changing meanwhile
                changed = []
                for _ in range(5):
                    key = (f"sp-{pick(patients)}", pick(goals))
                    versions[key] = versions.get(key, 1) + 1
                    changed.append(goal(key[0], key[1], versions[key]))
                store.put_records(changed, ["hapi"], NOW)
                time.sleep(0.25)
            victim = pick(4)
            fleet.kill(victim)
            kills += 1
            fleet.start(victim)
        depth = drain(store, "hapi", timeout=240)
    finally:
        fleet.stop()
    assert kills >= 30
    assert depth == {"done": patients * (1 + goals)}, depth
    _check_server(store, fhir_base_url, ns, patients, goals)
    assert out_of_order(store, ns) == []
    assert fleet.started >= 34


def test_a_worker_paused_past_its_lease_cannot_complete_work_taken_over(
    tmp_path: Path, postgres_url: str, store: Store, fhir_base_url: str
) -> None:
    """SIGSTOP a worker mid-push past its lease, let another take over, SIGCONT it: the
    paused one records nothing for that work; the other's result and latest content stand."""
    ns = _namespace()
    relay = Relay(upstream=fhir_base_url, hold_writes=True)
    with serving(relay) as relay_url:
        write_config(tmp_path / "fhir-bridge.toml", {"hapi": relay_url})
        fleet = Fleet(
            tmp_path,
            worker_env(tmp_path, postgres_url, ns),
            "--push-every",
            "0.3",
            "--pull-every",
            "0",
            "--lease-seconds",
            "3",
        )
        store.put_records(panel(3, 2), ["hapi"], NOW)
        try:
            paused = fleet.start(0)
            deadline = time.monotonic() + 60
            while relay.held == 0:  # its first write reached the server; its answer is held
                assert time.monotonic() < deadline, "the worker never wrote"
                time.sleep(0.05)
            paused.send_signal(signal.SIGSTOP)
            (first,) = store.workers.known()
            while any(x.holder == first.id for x in _live_leases(store)):
                assert time.monotonic() < deadline + 30, "the paused worker's lease never expired"
                time.sleep(0.2)
            relay.hold_writes = False
            store.put_records([goal("sp-0", 0, 2)], ["hapi"], NOW)  # newer content meanwhile
            fleet.start(1)
            drain(store, "hapi", timeout=120)
            relay.released.set()
            paused.send_signal(signal.SIGCONT)
            paused.send_signal(signal.SIGTERM)
            paused.wait(timeout=60)
            drain(store, "hapi", timeout=120)  # anything the paused one distrusted, redone
        finally:
            relay.released.set()
            fleet.stop()
    log = store.log.of_identifiers(ns)
    assert log, "nothing was logged"
    assert not [e for e in log if e.worker == first.id], "the paused worker recorded work"
    assert "lease lost: patient left to the worker holding it now" in fleet.logs()
    assert store.outbox.depth("hapi") == QueueDepth(done=9)
    _check_server(store, fhir_base_url, ns, 3, 2)
    assert out_of_order(store, ns) == []


def _live_leases(store: Store) -> list[Lease]:
    now = datetime.now(UTC)
    return [x for x in store.leases.current() if x.expires_at > now]


def test_eight_workers_with_a_cap_of_four_never_have_more_in_flight(
    tmp_path: Path, postgres_url: str, store: Store, fhir_base_url: str
) -> None:
    """max_in_flight is fleet-wide: the server never sees more than 4 requests from us."""
    ns = _namespace()
    relay = Relay(upstream=fhir_base_url)
    with serving(relay) as relay_url:
        write_config(tmp_path / "fhir-bridge.toml", {"hapi": relay_url}, max_in_flight=4)
        fleet = Fleet(tmp_path, worker_env(tmp_path, postgres_url, ns), *WORKER_ARGS)
        store.put_records(panel(120, 1), ["hapi"], NOW)
        try:
            for slot in range(8):
                fleet.start(slot)
            drain(store, "hapi", timeout=180)
        finally:
            fleet.stop()
    # every Patient and Goal went through the capped relay (packed: fewer requests than
    # patients, so count the resources the requests carried)
    assert relay.writes >= 240
    assert relay.max_in_flight <= 4
    assert relay.max_in_flight >= 2  # the workers did work side by side
    _check_server(store, fhir_base_url, ns, 120, 1)


def test_status_shows_workers_their_claims_and_queue_depth(
    tmp_path: Path, postgres_url: str, store: Store, fhir_base_url: str
) -> None:
    """`fhir-bridge status --json` while two workers run, and after they stop."""
    ns = _namespace()
    write_config(tmp_path / "fhir-bridge.toml", {"hapi": fhir_base_url})
    env = worker_env(tmp_path, postgres_url, ns)
    fleet = Fleet(tmp_path, env, *WORKER_ARGS)
    store.put_records(panel(40, 1), ["hapi"], NOW)
    try:
        fleet.start(0)
        fleet.start(1)
        deadline = time.monotonic() + 60
        while len(store.workers.known()) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        running = _status(env)
        assert len(running["alive"]) == 2
        assert {w["pid"] for w in running["alive"]} == {p.pid for p in fleet.procs.values()}
        assert set(running["queue"]) == {"hapi"}
        drain(store, "hapi")
    finally:
        fleet.stop()
    after = _status(env)
    assert after["alive"] == []
    assert after["queue"] == {"hapi": {"done": 80}}
    assert after["orphaned_claims"] == 0


def _status(env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [EXE, "status", "--json"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_a_throttled_server_delays_only_its_own_connection(
    tmp_path: Path, postgres_url: str, store: Store, fhir_base_url: str
) -> None:
    """A 429 with Retry-After from one server: once it is known, no worker writes to that
    server again before the time is up, and the other connection's whole queue goes
    through meanwhile."""
    retry_after = 20
    ns = _namespace()
    slow = ThrottlingServer(retry_after=retry_after)
    with serving(slow) as slow_url:
        write_config(tmp_path / "fhir-bridge.toml", {"slow": slow_url, "hapi": fhir_base_url})
        fleet = Fleet(tmp_path, worker_env(tmp_path, postgres_url, ns), *WORKER_ARGS)
        store.put_records(panel(15, 1), ["slow", "hapi"], NOW)
        try:
            fleet.start(0)
            fleet.start(1)
            drain(store, "hapi", timeout=120)
            hapi_drained_at = time.monotonic()
            drain(store, "slow", timeout=120)
        finally:
            fleet.stop()
    assert slow.started is not None
    assert hapi_drained_at < slow.started + retry_after  # not held up by the other server
    refused = [at - slow.started for at, status in slow.writes if status == 429]
    # only writes already under way when the first 429 came back; none sent after it
    assert max(refused) < 2.0, refused
    accepted = [at - slow.started for at, status in slow.writes if status == 201]
    assert min(accepted) >= retry_after
    assert len(accepted) == 30  # every resource once
    assert store.outbox.depth("hapi") == QueueDepth(done=30)
    assert store.outbox.depth("slow") == QueueDepth(done=30)


def test_postgres_restart_mid_run_workers_reconnect_and_finish(
    tmp_path: Path, postgres_url: str, store: Store, fhir_base_url: str
) -> None:
    """Restart PostgreSQL while two workers push: they reconnect, finish, nothing is lost."""
    control = Path(__file__).resolve().parents[2] / "sandbox" / "postgres.sh"
    if subprocess.run([str(control), "status"], check=False).returncode != 0:
        pytest.skip("the configured PostgreSQL is not the local cluster sandbox/postgres.sh runs")
    ns = _namespace()
    write_config(tmp_path / "fhir-bridge.toml", {"hapi": fhir_base_url})
    fleet = Fleet(tmp_path, worker_env(tmp_path, postgres_url, ns), *WORKER_ARGS)
    store.put_records(panel(150, 1), ["hapi"], NOW)
    try:
        fleet.start(0)
        fleet.start(1)
        deadline = time.monotonic() + 120
        while store.outbox.depth("hapi").done < 20:
            assert time.monotonic() < deadline, "no progress before the restart"
            time.sleep(0.2)
        restarted = subprocess.run(
            [str(control), "restart"], capture_output=True, text=True, check=False
        )
        assert restarted.returncode == 0, restarted.stderr
        assert store.outbox.depth("hapi").pending > 0  # work was left to finish
        depth = drain(store, "hapi", timeout=180)
        assert all(p.poll() is None for p in fleet.procs.values()), "a worker died"
    finally:
        fleet.stop()
    assert depth == {"done": 300}
    _check_server(store, fhir_base_url, ns, 150, 1)
    assert out_of_order(store, ns) == []
