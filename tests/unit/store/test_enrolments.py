"""Enrolments and routed queueing, on the real store (SQLite, then PostgreSQL when configured)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from fhir_bridge import model as m
from fhir_bridge.store import Link, NewEnrolment, Organization, Route, Routing, Store
from fhir_bridge.store._tables import EnrolmentRow
from fhir_bridge.store.testing import MemoryStore

from .records import NOW, goal, patient

ROUTING = Routing(
    (
        Route("one", "listed"),
        Route("two", "listed"),
        Route("pantry", "listed", Organization(id="org-pantry")),
        Route("everyone", "all"),
    )
)
LATER = NOW + timedelta(minutes=5)


def queued(store: Store, connection: str) -> set[tuple[str, str]]:
    return {(e.kind, e.record_id) for e in store.outbox.due(connection, LATER)}


def referral(patient_id: str = "p1") -> m.Referral:
    return m.Referral(
        id=f"ref-{patient_id}",
        updated_at=NOW,
        patient=patient_id,
        status=m.ReferralStatus.active,
        service=m.Concept(text="food pantry"),
        performer=m.Party(kind=m.PartyKind.organization, id="org-pantry"),
    )


def test_enrol_get_and_count(store: Store) -> None:
    assert store.enrolments.get("p1", "one") is None
    made = store.enrolments.enrol("p1", "one", "MRN-1", NOW)
    assert made.enrolment.mrn == "MRN-1"
    assert made.queued == 0
    assert store.enrolments.get("p1", "one") == made.enrolment
    assert made.enrolment.enrolled_at == NOW
    store.enrolments.enrol("p1", "one", None, LATER)  # again, no MRN given: the MRN stays
    again = store.enrolments.get("p1", "one")
    assert again is not None
    assert again.mrn == "MRN-1"
    assert again.enrolled_at == NOW
    store.enrolments.enrol("p1", "one", "MRN-2", LATER)
    assert store.enrolments.get("p1", "one").mrn == "MRN-2"  # type: ignore[union-attr]
    store.enrolments.enrol("p1", "two", None, NOW)
    store.enrolments.enrol("p2", "one", None, NOW)
    assert [e.connection for e in store.enrolments.of_patient("p1")] == ["one", "two"]
    assert [e.patient_id for e in store.enrolments.of_connection("one")] == ["p1", "p2"]
    assert store.enrolments.counts() == {"one": 2, "two": 1}


def test_one_enrolment_per_patient_and_connection(memory_store: MemoryStore) -> None:
    memory_store.enrolments.enrol("p1", "one", None, NOW)
    with pytest.raises(IntegrityError), memory_store._db.session() as s:
        s.add(EnrolmentRow(patient_id="p1", connection="one", mrn=None, enrolled_at=NOW))


def test_records_are_queued_only_where_they_are_routed(store: Store) -> None:
    store.enrolments.enrol("p1", "one", None, NOW)
    store.put_records([patient("p1"), goal(patient="p1"), patient("p2")], ROUTING, NOW)
    assert queued(store, "one") == {("patient", "p1"), ("goal", "g1")}
    assert queued(store, "two") == set()
    assert queued(store, "pantry") == set()
    assert queued(store, "everyone") == {("patient", "p1"), ("goal", "g1"), ("patient", "p2")}
    # the pantry fulfils p2's referral: it gets the referral, and the patient when it changes
    store.put_records([referral("p2")], ROUTING, NOW)
    assert queued(store, "pantry") == {("referral", "ref-p2")}
    store.put_records([patient("p2").model_copy(update={"active": True})], ROUTING, NOW)
    assert queued(store, "pantry") == {("referral", "ref-p2"), ("patient", "p2")}
    assert queued(store, "two") == set()


def test_enrolling_queues_what_is_stored_and_put_records_enrols_first(store: Store) -> None:
    store.put_records([patient("p1"), goal(patient="p1")], ROUTING, NOW)
    assert queued(store, "two") == set()
    made = store.enrolments.enrol("p1", "two", None, NOW)
    assert made.queued == 2
    assert queued(store, "two") == {("patient", "p1"), ("goal", "g1")}
    # a package's enrolments are written before its records are queued
    store.put_records([patient("p3")], ROUTING, NOW, enrolments=[NewEnrolment("p3", "one", "M3")])
    assert ("patient", "p3") in queued(store, "one")
    assert store.enrolments.get("p3", "one").mrn == "M3"  # type: ignore[union-attr]


def test_enqueue_unsynced_follows_the_routing(store: Store) -> None:
    store.put_records([patient("p1"), goal(patient="p1"), patient("p2"), referral("p2")], [], NOW)
    store.enrolments.enrol("p1", "one", None, NOW)  # queues p1's records itself
    assert store.outbox.enqueue_unsynced("one", NOW, ROUTING) == 0
    assert store.outbox.enqueue_unsynced("two", NOW, ROUTING) == 0
    assert store.outbox.enqueue_unsynced("pantry", NOW, ROUTING) == 2  # p2 and the referral
    assert queued(store, "pantry") == {("patient", "p2"), ("referral", "ref-p2")}
    assert store.outbox.enqueue_unsynced("everyone", NOW, ROUTING) == 4
    assert store.outbox.enqueue_unsynced("no-routing", NOW) == 4  # None: every record


def test_unenrol_drops_what_is_queued_and_says_what_stays_on_the_server(store: Store) -> None:
    store.enrolments.enrol("p1", "one", None, NOW)
    store.put_records(
        [patient("p1"), goal(patient="p1"), goal(goal_id="g9", patient="p9")], ROUTING, NOW
    )
    sent = store.outbox.due("one", LATER)
    store.outbox.mark_done(next(e for e in sent if e.kind == "patient"), NOW)
    store.links.save(
        [
            Link("one", "Patient", "sys|p1", "patient", "p1", "41", "1", None, "h", None, None),
            Link(
                "one", "Organization", "sys|o", "organization", "o", "7", "1", None, "h", None, None
            ),
            Link("two", "Patient", "sys|p1", "patient", "p1", "99", "1", None, "h", None, None),
            # another patient's goal whose id happens to be p1's
            Link("one", "Goal", "sys|p1", "goal", "p1", "8", "1", None, "h", None, None),
        ],
        NOW,
    )
    gone = store.enrolments.unenrol("p1", "one")
    assert gone.was_enrolled
    assert gone.dropped == 1
    assert [(x.resource_type, x.resource_id) for x in gone.remaining] == [("Patient", "41")]
    assert store.enrolments.get("p1", "one") is None
    assert queued(store, "one") == set()
    # nothing of p1 is queued for "one" again, not even by a later change or enqueue_unsynced
    store.put_records([goal("run daily", patient="p1")], ROUTING, NOW)
    assert store.outbox.enqueue_unsynced("one", NOW, ROUTING) == 0
    assert queued(store, "one") == set()
    assert store.enrolments.unenrol("p1", "one").was_enrolled is False
