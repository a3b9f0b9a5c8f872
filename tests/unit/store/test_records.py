"""Records: versions grow on change, deletes are marks, reads skip what was deleted."""

from __future__ import annotations

from datetime import timedelta

from fhir_bridge.store import Store
from fhir_bridge.store.testing import MemoryStore

from .records import NOW, goal, patient


def test_a_new_record_is_stored_and_queued_for_each_connection(store: Store) -> None:
    """Record and outbox entries are written together."""
    (result,) = store.put_records([goal()], ["a", "b"], NOW)
    assert result.changed
    assert result.version == 1
    assert store.records.get("goal", "g1") == goal()
    assert [e.record_id for e in store.outbox.due("a", NOW)] == ["g1"]
    assert [e.record_id for e in store.outbox.due("b", NOW)] == ["g1"]


def test_putting_the_same_content_again_changes_nothing(store: Store) -> None:
    """Idempotent ingest: same content, same version, no new outbox work."""
    store.put_records([goal()], ["a"], NOW)
    entry = store.outbox.due("a", NOW)[0]
    store.outbox.mark_done(entry, NOW)
    (result,) = store.put_records([goal()], ["a"], NOW)
    assert not result.changed
    assert result.version == 1
    assert store.outbox.due("a", NOW) == []


def test_a_change_bumps_the_version_and_requeues(store: Store) -> None:
    """A changed record goes back into the outbox with its new version."""
    store.put_records([goal()], ["a"], NOW)
    store.outbox.mark_done(store.outbox.due("a", NOW)[0], NOW)
    (result,) = store.put_records([goal("walk twice a day")], ["a"], NOW)
    assert result.version == 2
    (entry,) = store.outbox.due("a", NOW)
    assert entry.record_version == 2


def test_a_deleted_record_is_kept_marked_and_no_longer_read(memory_store: MemoryStore) -> None:
    store = memory_store
    store.put_records([goal()], [], NOW)
    assert not store.records.is_deleted("goal", "g1")
    assert store.records.delete("goal", "g1", NOW + timedelta(seconds=1))
    assert not store.records.delete("goal", "g1", NOW)  # nothing left to delete
    assert not store.records.delete("goal", "nope", NOW)
    assert store.records.is_deleted("goal", "g1")
    assert store.records.get("goal", "g1") is None
    assert store.records.get_with_version("goal", "g1") is None
    assert store.records.of_patient("p1") == []
    (again,) = store.put_records([goal()], [], NOW)  # stored again: a new version, not 1
    assert again.version == 3


def test_reads_by_patient_and_by_page(memory_store: MemoryStore) -> None:
    store = memory_store
    store.put_records(
        [patient("p1"), patient("p2"), goal("a", "g1", "p1"), goal("b", "g2", "p2")], [], NOW
    )
    store.put_records([goal("c", "g3", "p1")], [], NOW)
    assert sorted(store.records.patient_ids()) == ["p1", "p2"]
    assert {r.id for r in store.records.of_patient("p1")} == {"p1", "g1", "g3"}
    assert sorted((r.id, v) for r, v in store.records.of_patient_with_versions("p2")) == [
        ("g2", 1),
        ("p2", 1),
    ]
    page = store.records.page("goal", None, limit=2, offset=1)
    assert [(r.id, v) for r, v in page] == [("g2", 1), ("g3", 1)]
    assert [r.id for r, _ in store.records.page("goal", "p1", 10, 0)] == ["g1", "g3"]


def test_patient_ids_stream_in_id_order_page_by_page(store: Store) -> None:
    store.put_records([patient(f"p{i}") for i in (3, 1, 4, 0, 2)], [], NOW)
    store.put_records([goal()], [], NOW)  # not a patient
    assert list(store.records.iter_patient_ids(page_size=2)) == ["p0", "p1", "p2", "p3", "p4"]
