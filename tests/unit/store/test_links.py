"""Links: where a resource lives on a server, what we sent, and forgetting that on doubt."""

from __future__ import annotations

from fhir_bridge.store import Link, Store
from fhir_bridge.store.testing import MemoryStore

from .records import NOW, goal


def _link(identifier: str = "sys|g1", resource_id: str = "123", sent: str | None = "h") -> Link:
    return Link("a", "Goal", identifier, "goal", "g1", resource_id, "2", None, sent, {"x": 1}, None)


def test_links_round_trip(store: Store) -> None:
    """A link keeps the server id, version and what was sent; saving again replaces it."""
    store.links.save([_link()], NOW)
    assert store.links.find("a", "Goal", ["sys|g1"]) == {"sys|g1": _link()}
    store.links.save([_link(resource_id="456")], NOW)
    assert store.links.find("a", "Goal", ["sys|g1", "sys|other"]) == {
        "sys|g1": _link(resource_id="456")
    }
    assert store.links.find("a", "Goal", []) == {}
    assert store.links.find("b", "Goal", ["sys|g1"]) == {}


def test_links_of_a_connection_and_by_server_id(memory_store: MemoryStore) -> None:
    store = memory_store
    store.links.save([_link("sys|g1", "1"), _link("sys|g2", "2")], NOW)
    assert {x.identifier for x in store.links.of_connection("a")} == {"sys|g1", "sys|g2"}
    assert store.links.of_connection("b") == []
    assert set(store.links.by_server_id("a")) == {"Goal/1", "Goal/2"}


def test_distrust_forgets_what_was_sent_and_queues_the_record_again(
    memory_store: MemoryStore,
) -> None:
    store = memory_store
    store.put_records([goal()], ["a"], NOW)
    store.outbox.mark_done(store.outbox.due("a", NOW)[0], NOW)
    store.links.save([_link()], NOW)
    store.links.distrust("a", "Goal", "sys|g1", NOW)
    assert store.links.find("a", "Goal", ["sys|g1"])["sys|g1"].sent_hash is None
    assert [e.record_id for e in store.outbox.due("a", NOW)] == ["g1"]
    store.links.distrust("a", "Goal", "sys|unknown", NOW)  # nothing linked: nothing happens


def _linked(resource_type: str, identifier: str, resource_id: str, record_id: str) -> Link:
    kind = resource_type.lower()
    return Link(
        "a", resource_type, identifier, kind, record_id, resource_id, "1", None, "h", {}, {}
    )


def test_links_stream_page_by_page_and_are_found_by_server_id(store: Store) -> None:
    """Streaming pages smaller than the connection still gives every link once; server ids
    are looked up per type, unknown and malformed keys are absent."""
    links = [_linked("Goal", f"sys|g{i}", str(100 + i), f"g{i}") for i in range(5)]
    links += [_linked("Patient", "sys|p1", "p-1", "p1"), _linked("Patient", "sys|p2", "p-2", "p2")]
    store.links.save(links, NOW)
    store.links.save(
        [Link("b", "Goal", "sys|g0", "goal", "g0", "100", "1", None, None, None, None)], NOW
    )
    streamed = list(store.links.stream("a", page_size=2))
    assert sorted((x.resource_type, x.identifier) for x in streamed) == sorted(
        (x.resource_type, x.identifier) for x in links
    )
    found = store.links.by_server_ids(
        "a", ["Goal/101", "Goal/104", "Patient/p-2", "Goal/999", "Goal", "x/y/z"]
    )
    assert {k: v.record_id for k, v in found.items()} == {
        "Goal/101": "g1",
        "Goal/104": "g4",
        "Patient/p-2": "p2",
    }
    assert store.links.by_server_ids("a", []) == {}
    heads = store.links.heads_by_server_ids("a", ["Goal/101", "Patient/p-2", "Goal/999", "x/y/z"])
    assert heads == {k: found[k].head for k in ("Goal/101", "Patient/p-2")}


def test_patients_of_a_connection_are_server_ids_to_record_ids(store: Store) -> None:
    store.links.save(
        [
            _linked("Patient", "sys|p1", "p-1", "p1"),
            _linked("Patient", "sys|p2", "p-2", "p2"),
            _linked("Goal", "sys|g1", "7", "g1"),
        ],
        NOW,
    )
    assert store.links.patients("a") == {"Patient/p-1": "p1", "Patient/p-2": "p2"}
    assert store.links.patients("a", "p2") == {"Patient/p-2": "p2"}
    assert store.links.patients("b") == {}
