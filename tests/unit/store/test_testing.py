"""The in-memory store of the unit tests is the real store on the real, migrated schema."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import text

from fhir_bridge.store import QueueDepth, Store
from fhir_bridge.store.testing import MemoryStore

from .records import NOW, goal


def _schema(store: Store) -> list[tuple[str, str, str]]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
        )
        return [(str(t), str(n), str(s)) for t, n, s in rows]


def test_the_memory_schema_is_the_migrated_one(tmp_path: Path, memory_store: MemoryStore) -> None:
    """Same tables, indexes and constraints, statement for statement, and the same revision."""
    migrated = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
    try:
        assert _schema(memory_store) == _schema(migrated)
        assert len(_schema(migrated)) > 10
        query = text("SELECT version_num FROM alembic_version")
        with memory_store.engine.connect() as a, migrated.engine.connect() as b:
            assert a.execute(query).scalar() == b.execute(query).scalar()
    finally:
        migrated.close()


def test_foreign_keys_are_enforced_as_on_a_file(memory_store: MemoryStore) -> None:
    with memory_store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_reset_empties_every_table(memory_store: MemoryStore) -> None:
    memory_store.put_records([goal()], ["a"], NOW)
    memory_store.api_keys.create("ops", ["admin"], NOW)
    memory_store.reset()
    assert memory_store.records.get("goal", "g1") is None
    assert memory_store.outbox.depth() == QueueDepth()
    assert _schema(memory_store)  # the schema itself stays
    memory_store.put_records([goal()], ["a"], NOW)
    assert memory_store.outbox.depth() == QueueDepth(pending=1)


def test_stores_are_private_to_each_other() -> None:
    one, two = MemoryStore(), MemoryStore()
    try:
        one.put_records([goal()], ["a"], NOW)
        assert two.records.get("goal", "g1") is None
    finally:
        one.close()
        two.close()


def test_threads_share_one_store_one_transaction_at_a_time(memory_store: MemoryStore) -> None:
    """As ``asyncio.to_thread`` calls it: concurrent writers, none lost, none interleaved."""
    failures: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for n in range(25):
                memory_store.put_records([goal(goal_id=f"g{worker}-{n}")], ["a"], NOW)
                memory_store.runs.start("a", "push", NOW, f"w{worker}")
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert memory_store.outbox.depth() == QueueDepth(pending=100)
    assert len(memory_store.runs.recent(1000)) == 100


def test_a_plain_sqlite_memory_url_is_one_database_too() -> None:
    """``Store("sqlite://")`` (migrated on open) keeps its data across threads."""
    store = Store("sqlite://")
    try:
        store.put_records([goal()], [], NOW)
        found: list[object] = []
        reader = threading.Thread(target=lambda: found.append(store.records.get("goal", "g1")))
        reader.start()
        reader.join(timeout=30)
        assert found == [goal()]
    finally:
        store.close()
