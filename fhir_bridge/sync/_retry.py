"""When the outbox tries a failed record again, or gives up on it.

One value decides it, from the error itself (``BridgeError.permanent``: the error tree is the
only classification of failures) and how many attempts have failed. The FHIR client's own
:class:`~fhir_bridge.fhir.RetryPolicy` works a level below: it resends one request within
seconds; this schedule takes over when a push ends with the record still not written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fhir_bridge.errors import BridgeError


@dataclass(frozen=True)
class RetrySchedule:
    """Try again after ``first_wait`` doubling at each failure, never more than ``max_wait``;
    give up (dead-letter) after ``max_attempts`` failures, or at once for a permanent error.

    The defaults: 30 s, 1 min, 2 min, ... at most an hour, 8 attempts in all.
    """

    first_wait: timedelta = timedelta(seconds=30)
    max_wait: timedelta = timedelta(hours=1)
    max_attempts: int = 8

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.first_wait < timedelta(0) or self.max_wait < self.first_wait:
            raise ValueError("waits must be positive, max_wait at least first_wait")

    def wait(self, error: BridgeError, attempt: int) -> timedelta | None:
        """How long to wait after failed attempt ``attempt`` (1-based); None: give up."""
        if error.permanent or attempt >= self.max_attempts:
            return None
        doublings = min(max(0, attempt - 1), 32)  # past the cap long before; no overflow
        return min(self.max_wait, self.first_wait * (1 << doublings))

    def retry_at(self, error: BridgeError, attempt: int, now: datetime) -> datetime | None:
        """When to try again after failed attempt ``attempt``; None: dead-letter it."""
        wait = self.wait(error, attempt)
        return None if wait is None else now + wait


DEFAULT_SCHEDULE = RetrySchedule()
