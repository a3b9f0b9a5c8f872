"""Pull's links by server id: a chunk's read in one query, others one at a time, the last
chunk's let go."""

from __future__ import annotations

from typing import Any

from fhir_bridge.store import Link, Store
from fhir_bridge.sync._server_links import ServerLinks
from tests.unit.sync.conftest import NOW


def _link(resource_type: str, resource_id: str, record_id: str) -> Link:
    return Link(
        "ehr", resource_type, f"sys|{record_id}", resource_type.lower(), record_id,
        resource_id, "1", None, None, None, None,
    )  # fmt: skip


class Counting:
    """The store's links, counting the queries by server id."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.asked: list[set[str]] = []

    def by_server_ids(self, connection: str, keys: Any) -> dict[str, Link]:
        wanted = set(keys)
        self.asked.append(wanted)
        return self.store.links.by_server_ids(connection, wanted)


def test_a_chunk_and_its_references_are_read_in_one_go(store: Store) -> None:
    store.links.save(
        [_link("Patient", "10", "p1"), _link("Goal", "20", "g1"), _link("Goal", "21", "g2")], NOW
    )
    counting = Counting(store)
    links = ServerLinks(counting, "ehr")
    goal = {"resourceType": "Goal", "id": "20", "subject": {"reference": "Patient/10"}}
    links.load([goal, {"resourceType": "Goal", "id": "99"}])
    assert counting.asked == [{"Goal/20", "Goal/99", "Patient/10"}]
    got = links.get("Goal/20")
    assert got is not None
    assert got.record_id == "g1"
    assert links.get("Goal/99") is None  # known absent: not asked again
    assert links.get("Patient/10") is not None
    assert len(counting.asked) == 1
    other = links.get("Goal/21")  # outside the chunk: read on its own
    assert other is not None
    assert other.record_id == "g2"
    assert counting.asked[-1] == {"Goal/21"}
    links.load([])  # the next chunk: the last one's links are let go
    assert links.get("Goal/20") is not None
    assert counting.asked[-1] == {"Goal/20"}
