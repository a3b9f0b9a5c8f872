"""Local deletions: queued where the record was sent or queued, recorded per patient."""

from __future__ import annotations

import pytest

from fhir_bridge.errors import PatientHasRecords
from fhir_bridge.store import Closing, Gone, Link, NewConflict, Store, Written

from .records import NOW, goal, patient


def _link(connection: str, resource_id: str = "123") -> Link:
    return Link(connection, "Goal", "sys|g1", "goal", "g1", resource_id, "2", None, "h", {}, {})


def _deleting(store: Store, connection: str) -> list[tuple[str, int, bool]]:
    return [(e.record_id, e.record_version, e.deleting) for e in store.outbox.due(connection, NOW)]


def test_a_delete_is_queued_where_the_record_was_sent_or_queued_and_nowhere_else(
    store: Store,
) -> None:
    """Linked on `a` (sent, entry done), queued for `b` (never sent), unknown to `c`."""
    store.put_records([goal()], ["a", "b"], NOW)
    store.outbox.mark_done(store.outbox.due("a", NOW)[0], NOW)
    store.links.save([_link("a")], NOW)

    deleted = store.delete_record("goal", "g1", NOW)

    assert deleted is not None
    assert (deleted.version, deleted.connections) == (2, ("a", "b"))
    assert store.records.get("goal", "g1") is None
    assert store.records.is_deleted("goal", "g1")
    assert store.records.deleted("goal", "g1") == goal()
    assert _deleting(store, "a") == [("g1", 2, True)]
    assert _deleting(store, "b") == [("g1", 2, True)]
    assert _deleting(store, "c") == []
    assert store.delete_record("goal", "g1", NOW) is None  # deleted already
    assert store.delete_record("goal", "nothing", NOW) is None


def test_a_patient_with_records_is_refused_alone_and_deleted_with_them(store: Store) -> None:
    """Deleted alone, its records would go on being pushed naming a patient that is gone."""
    store.put_records([patient(), goal(), goal("rest", goal_id="g2")], ["a"], NOW)
    store.delete_record("goal", "g2", NOW)  # deleted before: not counted again
    with pytest.raises(PatientHasRecords) as refused:
        store.delete_record("patient", "p1", NOW)
    assert (refused.value.patient_id, refused.value.records) == ("p1", 1)
    assert store.records.get("patient", "p1") is not None  # nothing deleted
    assert store.records.get("goal", "g1") is not None

    deleted = store.delete_record("patient", "p1", NOW, with_records=True)

    assert deleted is not None
    assert (deleted.records, deleted.connections) == (1, ("a",))
    assert store.records.is_deleted("patient", "p1")
    assert store.records.is_deleted("goal", "g1")
    assert {(e.record_id, e.deleting) for e in store.outbox.due("a", NOW)} == {
        ("p1", True),
        ("g1", True),
        ("g2", True),
    }
    assert store.delete_record("patient", "p1", NOW, with_records=True) is None


def test_a_patient_without_records_is_deleted_alone(store: Store) -> None:
    store.put_records([patient()], ["a"], NOW)
    deleted = store.delete_record("patient", "p1", NOW)
    assert deleted is not None
    assert deleted.records == 0
    assert store.delete_record("patient", "nobody", NOW) is None


def test_due_can_be_asked_for_the_deletions_alone(store: Store) -> None:
    store.put_records([goal(), goal("rest", goal_id="g2")], ["a"], NOW)
    store.delete_record("goal", "g1", NOW)
    assert {e.record_id for e in store.outbox.due("a", NOW)} == {"g1", "g2"}
    (only,) = store.outbox.due("a", NOW, deletions_only=True)
    assert (only.record_id, only.deleting) == ("g1", True)


def test_putting_the_record_again_turns_its_deletion_back_into_a_write(store: Store) -> None:
    store.put_records([goal()], ["a"], NOW)
    store.delete_record("goal", "g1", NOW)
    store.put_records([goal("walk more")], ["a"], NOW)
    assert _deleting(store, "a") == [("g1", 3, False)]


def test_a_deletion_recorded_drops_its_link_closes_its_entry_and_logs_it(store: Store) -> None:
    store.put_records([goal()], ["a"], NOW)
    store.links.save([_link("a")], NOW)
    store.delete_record("goal", "g1", NOW)
    (entry,) = store.outbox.due("a", NOW)
    run_id = store.runs.start("a", "push", NOW)

    store.record_deletions(
        "a",
        run_id=run_id,
        written=[Written("Goal", "sys|g1", "deleted", record_version=2)],
        gone=[Gone("a", "Goal", "sys|g1")],
        closing=[Closing(entry, "done")],
        now=NOW,
    )

    assert store.links.of_connection("a") == []
    assert store.outbox.due("a", NOW) == []
    assert store.outbox.depth("a").done == 1
    assert [(x.action, x.identifier) for x in store.log.of_identifiers("sys|")] == [
        ("deleted", "sys|g1")
    ]


def test_a_deletion_conflict_kept_then_settled_for_the_local_side_queues_it_again(
    store: Store,
) -> None:
    store.put_records([goal()], ["a"], NOW)
    store.delete_record("goal", "g1", NOW)
    (entry,) = store.outbox.due("a", NOW)
    data = goal().model_dump(mode="json", exclude_none=True)
    store.record_deletions(
        "a",
        run_id=None,
        closing=[Closing(entry, "done")],
        conflicts=[NewConflict("goal", "g1", ["deleted"], None, {**data, "deleted": True}, data)],
        now=NOW,
    )
    (conflict,) = store.conflicts.find()
    assert (conflict.connection, conflict.fields) == ("a", ["deleted"])
    assert store.outbox.due("a", NOW) == []

    result = store.resolve_deletion_conflict(conflict.id, NOW)

    assert (result.kind, result.id, result.version) == ("goal", "g1", 2)
    assert store.conflicts.find() == []
    assert _deleting(store, "a") == [("g1", 2, True)]
    assert store.records.is_deleted("goal", "g1")


def test_a_record_restored_when_the_ehr_wins_is_back_with_a_change_feed_row(
    store: Store,
) -> None:
    store.put_records([goal()], ["a"], NOW)
    store.delete_record("goal", "g1", NOW)
    (entry,) = store.outbox.due("a", NOW)
    store.record_deletions(
        "a", run_id=None, closing=[Closing(entry, "done")], restored=[goal()], now=NOW
    )
    assert store.records.get_with_version("goal", "g1") == (goal(), 3)
    (change,) = store.changes.since(0)
    assert (change.record_id, change.change, change.record_version) == ("g1", "updated", 3)
    assert store.outbox.due("a", NOW) == []  # restored here, not written back
