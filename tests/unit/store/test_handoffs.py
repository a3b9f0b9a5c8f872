"""Handoffs: kept with their findings and document; listed newest first without documents."""

from __future__ import annotations

from datetime import timedelta

from fhir_bridge.store import Handoff, HandoffSummary
from fhir_bridge.store.testing import MemoryStore

from .records import NOW

FINDING = {"code": "no-goal", "severity": "warning", "record": None, "message": "none"}


def test_handoffs_are_kept_and_read_back(memory_store: MemoryStore) -> None:
    store = memory_store
    first = store.handoffs.add(
        package_id="pkg-1",
        patient_id="p1",
        handoff_type="transfer",
        author="Care team",
        destination=None,
        findings=[FINDING],
        delivery=None,
        now=NOW,
        document={"resourceType": "Bundle"},
    )
    second = store.handoffs.add(
        package_id="pkg-2",
        patient_id="p2",
        handoff_type="referral",
        author=None,
        destination="ehr",
        findings=[],
        delivery="delivered: Bundle/1 on ehr",
        now=NOW + timedelta(minutes=1),
    )
    assert store.handoffs.recent() == [
        HandoffSummary(
            second,
            "pkg-2",
            "p2",
            "referral",
            None,
            "ehr",
            [],
            "delivered: Bundle/1 on ehr",
            NOW + timedelta(minutes=1),
        ),
        HandoffSummary(first, "pkg-1", "p1", "transfer", "Care team", None, [FINDING], None, NOW),
    ]
    assert [h.id for h in store.handoffs.recent(1)] == [second]
    assert store.handoffs.get(first) == Handoff(
        first,
        "pkg-1",
        "p1",
        "transfer",
        "Care team",
        None,
        [FINDING],
        None,
        NOW,
        {"resourceType": "Bundle"},
    )
    assert store.handoffs.get(999) is None
