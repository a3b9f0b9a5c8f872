"""The outbox's retry schedule: waits, giving up, and what the error tree says is permanent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fhir_bridge.errors import (
    AuthError,
    BridgeError,
    FhirStatusError,
    FhirTransportError,
    MalformedResponse,
    MappingError,
    NotSupportedByServer,
    Problem,
    RateLimited,
    ResourceNotFound,
    VersionConflict,
)
from fhir_bridge.sync import RetrySchedule

TRANSIENT = FhirTransportError("ReadTimeout", "POST", "")


def test_the_default_schedule_doubles_from_30_seconds_to_an_hour_over_8_attempts() -> None:
    schedule = RetrySchedule()
    waits = [schedule.wait(TRANSIENT, n) for n in range(1, 9)]
    assert waits[:7] == [timedelta(seconds=s) for s in (30, 60, 120, 240, 480, 960, 1920)]
    assert waits[7] is None  # the eighth failure: dead letter
    assert RetrySchedule(max_attempts=20).wait(TRANSIENT, 12) == timedelta(hours=1)


def test_retry_at_is_now_plus_the_wait() -> None:
    now = datetime(2025, 3, 1, tzinfo=UTC)
    assert RetrySchedule().retry_at(TRANSIENT, 2, now) == now + timedelta(minutes=1)
    assert RetrySchedule().retry_at(MappingError([]), 1, now) is None


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (MappingError([Problem("status", "unknown")]), True),
        (NotSupportedByServer("CarePlan", "update"), True),
        (FhirStatusError(400), True),
        (FhirStatusError(422), True),
        (ResourceNotFound(404), True),
        (AuthError("token endpoint refused", status=401), True),
        (FhirStatusError(408), False),
        (FhirStatusError(409), False),
        (VersionConflict(412), False),
        (RateLimited(429), False),
        (FhirStatusError(500), False),
        (FhirStatusError(503), False),
        (TRANSIENT, False),
        (MalformedResponse("expected a Bundle", status=200), False),
        (AuthError("discovery failed"), False),
        (BridgeError("anything else"), False),
    ],
)
def test_permanent_failures_are_dead_lettered_at_once(error: BridgeError, permanent: bool) -> None:
    assert error.permanent is permanent
    assert (RetrySchedule().wait(error, 1) is None) is permanent


def test_a_schedule_is_checked_when_made() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetrySchedule(max_attempts=0)
    with pytest.raises(ValueError, match="max_wait"):
        RetrySchedule(first_wait=timedelta(hours=2), max_wait=timedelta(hours=1))
