"""Three-way merge: one-sided changes merge, two-sided changes conflict or follow the policy."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fhir_bridge.sync._merge import three_way

BASE = {"id": "g1", "kind": "goal", "lifecycle_status": "active", "priority": "high", "notes": []}


def test_changes_to_different_fields_merge() -> None:
    """The care manager changed priority, the clinician the status: both kept."""
    local = BASE | {"priority": "low"}
    remote = BASE | {"lifecycle_status": "completed"}
    result = three_way(BASE, local, remote)
    assert result.merged["priority"] == "low"
    assert result.merged["lifecycle_status"] == "completed"
    assert result.conflicts == []
    assert result.changed_locally == ["priority"]
    assert result.changed_remotely == ["lifecycle_status"]


def test_same_field_changed_both_ways_is_a_conflict_under_manual() -> None:
    """Manual policy: the local value stays, the conflict carries base, local and remote."""
    local = BASE | {"lifecycle_status": "on_hold"}
    remote = BASE | {"lifecycle_status": "completed"}
    result = three_way(BASE, local, remote, "manual")
    assert result.merged["lifecycle_status"] == "on_hold"
    (conflict,) = result.conflicts
    assert (conflict.field, conflict.base, conflict.local, conflict.remote) == (
        "lifecycle_status",
        "active",
        "on_hold",
        "completed",
    )


def test_policies_pick_the_winner_and_record_the_loser() -> None:
    """ehr-wins takes the EHR's value, local-wins keeps ours; the other side is recorded."""
    local = BASE | {"lifecycle_status": "on_hold"}
    remote = BASE | {"lifecycle_status": "completed"}
    ehr = three_way(BASE, local, remote, "ehr-wins")
    assert ehr.merged["lifecycle_status"] == "completed"
    assert ehr.overruled[0].local == "on_hold"
    ours = three_way(BASE, local, remote, "local-wins")
    assert ours.merged["lifecycle_status"] == "on_hold"
    assert ours.overruled[0].remote == "completed"
    assert ehr.conflicts == ours.conflicts == []


def test_a_field_removed_remotely_is_removed() -> None:
    """A field the clinician cleared is cleared locally when we had not touched it."""
    result = three_way(BASE, BASE, {k: v for k, v in BASE.items() if k != "priority"})
    assert "priority" not in result.merged


VALUES = st.sampled_from(["a", "b", "c", None])
RECORDS = st.fixed_dictionaries({"x": VALUES, "y": VALUES, "z": VALUES}).map(
    lambda d: {k: v for k, v in d.items() if v is not None}
)


@given(RECORDS, RECORDS)
def test_unchanged_local_takes_remote(base: dict[str, Any], remote: dict[str, Any]) -> None:
    """Nothing changed locally: the merge is exactly the remote record."""
    result = three_way(base, base, remote)
    assert {k: v for k, v in result.merged.items() if k != "fhir_extras"} == remote
    assert result.conflicts == []


@given(RECORDS, RECORDS)
def test_unchanged_remote_keeps_local(base: dict[str, Any], local: dict[str, Any]) -> None:
    """Nothing changed in the EHR: the merge is exactly the local record."""
    result = three_way(base, local, base)
    assert {k: v for k, v in result.merged.items() if k != "fhir_extras"} == local


@given(RECORDS, RECORDS, RECORDS)
def test_every_differing_field_is_accounted_for(
    base: dict[str, Any], local: dict[str, Any], remote: dict[str, Any]
) -> None:
    """Each field where the sides differ is merged one way or reported as a conflict."""
    result = three_way(base, local, remote)
    differing = {k for k in set(local) | set(remote) if local.get(k) != remote.get(k)}
    handled = (
        set(result.changed_locally)
        | set(result.changed_remotely)
        | {c.field for c in result.conflicts}
    )
    assert differing == handled
