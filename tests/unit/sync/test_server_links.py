"""Pull's links by server id: a chunk's heads read in one query, whole links only where the
version moved, others one at a time, the last chunk's let go."""

from __future__ import annotations

from typing import Any

from fhir_bridge.store import Link, LinkHead, Store
from fhir_bridge.sync._server_links import ServerLinks
from tests.unit.sync.conftest import NOW


def _link(resource_type: str, resource_id: str, record_id: str) -> Link:
    return Link(
        "ehr", resource_type, f"sys|{record_id}", resource_type.lower(), record_id,
        resource_id, "1", None, None, {"resourceType": resource_type}, {"id": resource_id},
    )  # fmt: skip


class Counting:
    """The store's links, counting the queries by server id (whole links, and heads)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.whole: list[set[str]] = []
        self.heads: list[set[str]] = []

    def by_server_ids(self, connection: str, keys: Any) -> dict[str, Link]:
        wanted = set(keys)
        self.whole.append(wanted)
        return self.store.links.by_server_ids(connection, wanted)

    def heads_by_server_ids(self, connection: str, keys: Any) -> dict[str, LinkHead]:
        wanted = set(keys)
        self.heads.append(wanted)
        return self.store.links.heads_by_server_ids(connection, wanted)


def _goal(resource_id: str, version: str) -> dict[str, Any]:
    return {
        "resourceType": "Goal",
        "id": resource_id,
        "meta": {"versionId": version},
        "subject": {"reference": "Patient/10"},
    }


def test_a_chunk_reads_heads_in_one_go_and_whole_links_only_where_the_version_moved(
    store: Store,
) -> None:
    store.links.save(
        [_link("Patient", "10", "p1"), _link("Goal", "20", "g1"), _link("Goal", "21", "g2")], NOW
    )
    counting = Counting(store)
    links = ServerLinks(counting, "ehr")
    # Goal/20 is as we last saw it (version 1), Goal/21 moved on (version 2), Goal/99 is new
    links.load([_goal("20", "1"), _goal("21", "2"), {"resourceType": "Goal", "id": "99"}])
    assert counting.heads == [{"Goal/20", "Goal/21", "Goal/99", "Patient/10"}]
    assert counting.whole == [{"Goal/21"}]
    head = links.head("Goal/20")
    assert head == LinkHead("Goal", "20", "sys|g1", "goal", "g1", "1")
    moved = links.get("Goal/21")
    assert moved is not None
    assert moved.server_json == {"id": "21"}  # the copy the merge starts from
    assert links.get("Goal/99") is None  # known absent: not asked again
    assert links.head("Goal/99") is None
    assert links.head("Patient/10") is not None
    assert len(counting.heads) == 1
    assert len(counting.whole) == 1
    unchanged = links.get("Goal/20")  # asked for whole after all: read on its own
    assert unchanged is not None
    assert unchanged.head == head
    assert counting.whole[-1] == {"Goal/20"}


def test_keys_outside_the_chunk_are_read_on_their_own_and_the_last_chunk_let_go(
    store: Store,
) -> None:
    store.links.save([_link("Goal", "20", "g1"), _link("Goal", "21", "g2")], NOW)
    counting = Counting(store)
    links = ServerLinks(counting, "ehr")
    links.load([_goal("20", "1")])
    other = links.head("Goal/21")
    assert other is not None
    assert other.record_id == "g2"
    assert counting.heads[-1] == {"Goal/21"}
    links.load([])  # the next chunk: the last one's links are let go
    assert links.get("Goal/20") is not None
    assert counting.whole[-1] == {"Goal/20"}
    assert links.head("Goal/20") is not None  # the whole link read gives its head
    assert counting.heads[-1] == set()
