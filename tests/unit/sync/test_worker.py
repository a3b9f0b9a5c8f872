"""The worker loop without a server: it pushes what is queued, pulls, stops when asked, and one
failing connection does not hold up the others.

The worker runs in-process (``Worker.run``) with a mock transport under its fleet gate that
answers as the in-memory FHIR server (and, for a second host, as a server refusing everything).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from fhir_bridge.config import ConnectionConfig, Settings
from fhir_bridge.store import Store
from fhir_bridge.sync import Worker
from tests.unit.sync.conftest import CONNECTION, NAMESPACE, NOW, patient_records
from tests.unit.sync.fhir_server import BASE, FhirServer, error

pytestmark = pytest.mark.anyio
DOWN = "https://down.test/fhir"


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/bridge.db"


@pytest.fixture
def db(url: str) -> Iterator[Store]:
    s = Store(url)  # the schema first: the worker opens the store without migrating
    yield s
    s.close()


def settings(url: str, *names: str) -> Settings:
    bases = {CONNECTION: BASE, "down": DOWN}
    return Settings(
        database_url=url,
        namespace=NAMESPACE,
        connections={
            n: ConnectionConfig(base_url=bases[n], enrol="all", patient_mode="create")
            for n in names
        },
    )


async def until(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the worker did not get there in time"
        await asyncio.sleep(0.02)


async def stopped(worker: Worker, task: asyncio.Task[None]) -> float:
    """Ask the worker to stop; how long it took."""
    started = time.monotonic()
    worker.stop.set()
    await asyncio.wait_for(task, 10)
    return time.monotonic() - started


def later() -> datetime:
    return datetime.now(UTC) + timedelta(days=1)


async def test_the_worker_pushes_what_is_queued_pulls_and_stops_when_asked(
    url: str, db: Store, server: FhirServer
) -> None:
    db.put_records(patient_records(), [CONNECTION], NOW)
    worker = Worker(
        settings(url, CONNECTION), push_every=0.05, pull_every=0.05, transport=server.transport
    )
    task = asyncio.create_task(worker.run())
    await until(lambda: not db.outbox.due(CONNECTION, later()) and len(server.of_type("Goal")) == 3)
    await until(lambda: any(r.direction == "pull" for r in db.runs.recent()))
    assert await stopped(worker, task) < 5
    assert len(server.of_type("Patient")) == 1
    assert db.outbox.dead_letters() == []
    assert db.leases.current() == []  # every lease given back
    (me,) = db.workers.known()
    assert me.stopped_at is not None
    # the push is in the audit trail, by this worker, with its counts; idle cycles are not
    pushes = db.audit.query(actor=f"worker:{worker.id}")
    assert [(e.action, e.connection) for e in pushes][:1] == [("push", CONNECTION)]
    assert sum(e.detail.get("created", 0) for e in pushes if e.action == "push") >= 4
    assert all(e.action == "push" or e.detail for e in pushes)


async def test_a_record_put_while_the_worker_runs_is_pushed_on_a_later_tick(
    url: str, db: Store, server: FhirServer
) -> None:
    records = patient_records()
    db.put_records(records[:1], [CONNECTION], NOW)  # the patient alone
    worker = Worker(
        settings(url, CONNECTION), push_every=0.05, pull_every=0, transport=server.transport
    )
    task = asyncio.create_task(worker.run())
    await until(lambda: len(server.of_type("Patient")) == 1)
    assert server.of_type("Goal") == []
    db.put_records(records[1:], [CONNECTION], NOW)
    await until(lambda: len(server.of_type("Goal")) == 3 and not db.outbox.due(CONNECTION, later()))
    await stopped(worker, task)
    assert not [r for r in db.runs.recent() if r.direction == "pull"]  # pull_every 0: push only


async def test_an_idle_worker_stops_at_once_even_between_long_sleeps(
    url: str, db: Store, server: FhirServer
) -> None:
    worker = Worker(
        settings(url, CONNECTION), push_every=60, pull_every=0, transport=server.transport
    )
    task = asyncio.create_task(worker.run())
    await until(lambda: bool(db.workers.known()))
    await asyncio.sleep(0.2)
    assert await stopped(worker, task) < 2


async def test_a_failing_connection_does_not_hold_up_the_others(
    url: str, db: Store, server: FhirServer
) -> None:
    """One server refuses everything: its records stay queued, the other's are pushed."""
    refused: list[httpx.Request] = []

    async def two_servers(request: httpx.Request) -> httpx.Response:
        if request.url.host == "down.test":
            refused.append(request)
            return error(401, "no access")
        return await server.router.async_handler(request)

    records = patient_records()
    db.put_records(records, [CONNECTION, "down"], NOW)
    worker = Worker(
        settings(url, "down", CONNECTION),
        push_every=0.05,
        pull_every=0,
        transport=httpx.MockTransport(two_servers),
    )
    task = asyncio.create_task(worker.run())
    await until(lambda: not db.outbox.due(CONNECTION, later()) and len(refused) >= 2)
    await stopped(worker, task)
    assert len(server.of_type("Goal")) == 3
    assert len(db.outbox.due("down", later())) == len(records)  # still queued, nothing lost
    assert db.leases.current() == []
