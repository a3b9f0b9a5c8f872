"""Notifications are coalesced per connection and type into pulls, one at a time per key."""

from __future__ import annotations

import asyncio

import pytest

from fhir_bridge import metrics
from fhir_bridge.sync import Notifications

pytestmark = pytest.mark.anyio


def _count(connection: str, resource_type: str, outcome: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "fhir_bridge_notifications_total",
        {"connection": connection, "resource_type": resource_type, "outcome": outcome},
    )
    return value or 0.0


async def test_twenty_notifications_within_the_window_cause_one_pull_of_that_type() -> None:
    pulls: list[tuple[str, str | None]] = []

    async def pull(connection: str, resource_type: str | None) -> None:
        pulls.append((connection, resource_type))

    before = _count("coalesce-a", "Goal", "coalesced")
    notes = Notifications(pull, window=0.05)
    started = [notes.hint("coalesce-a", "Goal") for _ in range(20)]
    notes.hint("coalesce-a", "CarePlan")
    notes.hint("coalesce-b", "Goal")
    await notes.drain()
    assert started == [True] + [False] * 19
    assert sorted(pulls, key=str) == sorted(
        [("coalesce-a", "Goal"), ("coalesce-a", "CarePlan"), ("coalesce-b", "Goal")], key=str
    )
    assert (notes.hints, notes.pulls) == (22, 3)
    assert _count("coalesce-a", "Goal", "coalesced") - before == 19
    assert _count("coalesce-a", "Goal", "pulled") >= 1


async def test_a_notification_during_a_pull_causes_one_more_pull_after_it() -> None:
    release = asyncio.Event()
    running = 0
    most = 0
    pulls = 0

    async def pull(connection: str, resource_type: str | None) -> None:
        nonlocal running, most, pulls
        running += 1
        most = max(most, running)
        pulls += 1
        await release.wait()
        running -= 1

    notes = Notifications(pull, window=0.01)
    notes.hint("ehr", "Goal")
    while pulls == 0:  # the first pull is under way
        await asyncio.sleep(0.005)
    # arrived after the first read: they need a pull of their own, one for all of them
    assert [notes.hint("ehr", "Goal") for _ in range(5)] == [True, False, False, False, False]
    await asyncio.sleep(0.05)
    assert pulls == 1  # the second waits for the first
    release.set()
    await notes.drain()
    assert (pulls, most) == (2, 1)


async def test_a_failed_pull_is_logged_and_the_next_notification_pulls_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0

    async def pull(connection: str, resource_type: str | None) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("server away")

    notes = Notifications(pull, window=0.0)
    notes.hint("ehr", "Task")
    await notes.drain()
    notes.hint("ehr", "Task")
    await notes.drain()
    assert calls == 2
    assert any(r.getMessage() == "notification pull failed" for r in caplog.records)


async def test_close_drops_what_still_waits() -> None:
    pulls = 0

    async def pull(connection: str, resource_type: str | None) -> None:
        nonlocal pulls
        pulls += 1

    notes = Notifications(pull, window=30.0)
    notes.hint("ehr", "Goal")
    await notes.close()
    assert pulls == 0
    assert notes.hint("ehr", "Goal")  # nothing left behind: a new hint starts a new wait
    await notes.close()
    assert pulls == 0
