"""Retry policy: which failures to try again, how long to wait, when to give up.

The policy is a value. It decides; the client sends. Waiting goes through the policy's
``sleep`` and time through its ``clock``, so tests check every wait without sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from tenacity import AsyncRetrying, RetryCallState

from fhir_bridge.errors import FhirStatusError, FhirTransportError

log = logging.getLogger("fhir_bridge.fhir")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
# answers and failures that say the server never acted on the request: a request that is not
# safe to repeat (a transaction carrying a bare POST, such as push's Provenance) is retried
# on these only. 429 is a refusal before any work; the rest never reached the server.
UNPROCESSED_STATUSES = frozenset({429})
UNSENT_TRANSPORT = frozenset({"ConnectError", "ConnectTimeout", "PoolTimeout"})
# an answered, failed transaction was rolled back whole, so nothing can be applied twice: a 500
# on one is often a clash with a concurrent transaction (a deadlock, two inserts of the same
# key) that does not happen again, and is worth ``atomic_retries`` more tries
ATOMIC_STATUSES = frozenset({500})


@dataclass(frozen=True)
class RetryPolicy:
    """How the client retries requests.

    Retried, for requests safe to repeat: HTTP 429, 502, 503, 504 and transport failures
    (timeouts, refused or dropped connections). For the others, only what says the request
    was never acted on: a 429, a connection that could not be made. A transaction (``atomic``)
    answered 500 is also tried ``atomic_retries`` more times. The wait is the server's
    ``Retry-After`` (capped by ``max_retry_after``) or else exponential backoff from
    ``base_delay`` up to ``max_delay`` with jitter. At most ``max_attempts`` requests, and no
    sleep that would end past ``max_total_seconds`` after the first one.
    """

    max_attempts: int = 5
    max_total_seconds: float = 60.0
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 120.0
    retry_statuses: frozenset[int] = RETRY_STATUSES
    atomic_retries: int = 1
    sleep: Callable[[float], Awaitable[None]] = field(
        default=asyncio.sleep, compare=False, repr=False
    )
    clock: Callable[[], float] = field(default=time.time, compare=False, repr=False)
    jitter: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.max_total_seconds, self.base_delay, self.max_delay, self.max_retry_after) < 0:
            raise ValueError("delays must not be negative")

    def retryable(self, exc: BaseException) -> bool:
        """Whether this failure may go away if the same request is sent again."""
        if isinstance(exc, FhirTransportError):
            return exc.retryable
        return isinstance(exc, FhirStatusError) and exc.status in self.retry_statuses

    def retryable_unsafe(self, exc: BaseException) -> bool:
        """Whether a request not safe to repeat may be sent again after this failure: only
        when the server cannot have acted on it."""
        if isinstance(exc, FhirTransportError):
            return exc.retryable and exc.error_type in UNSENT_TRANSPORT
        return (
            isinstance(exc, FhirStatusError)
            and exc.status in self.retry_statuses & UNPROCESSED_STATUSES
        )

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt ``attempt`` (1-based) when the server named none.

        Exponential with "equal jitter": between half and all of ``base_delay * 2**(n-1)``,
        never above ``max_delay``.
        """
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** max(0, attempt - 1))
        return ceiling / 2 + self.jitter() * ceiling / 2

    def wait(self, attempt: int, retry_after: float | None) -> float:
        """The wait before the next attempt: Retry-After first (capped), else backoff."""
        if retry_after is not None:
            return min(max(0.0, retry_after), self.max_retry_after)
        return self.backoff(attempt)

    def gives_up(self, attempt: int, elapsed: float, next_wait: float) -> bool:
        """Whether to stop after ``attempt`` failures, ``elapsed`` seconds in."""
        return attempt >= self.max_attempts or elapsed + next_wait > self.max_total_seconds

    def retrying(self, *, safe: bool, atomic: bool = False) -> AsyncRetrying:
        """A tenacity controller for one call; ``safe`` says the request may be repeated,
        ``atomic`` that it is a transaction (an error answer means nothing was applied)."""
        start = self.clock()
        retryable = self.retryable if safe else self.retryable_unsafe

        def retry(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome is not None else None
            if exc is None:
                return False
            return retryable(exc) or (
                atomic
                and state.attempt_number <= self.atomic_retries
                and isinstance(exc, FhirStatusError)
                and exc.status in ATOMIC_STATUSES
            )

        def wait(state: RetryCallState) -> float:
            return self.wait(state.attempt_number, _retry_after(state))

        def stop(state: RetryCallState) -> bool:
            return self.gives_up(state.attempt_number, self.clock() - start, state.upcoming_sleep)

        return AsyncRetrying(
            retry=retry,
            wait=wait,
            stop=stop,
            sleep=self.sleep,
            before_sleep=_log_retry,
            reraise=True,
        )


def parse_retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP-date; None if absent."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT
        return None
    return max(0.0, when.timestamp() - now)


def is_safe_to_repeat(method: str, url: str, headers: Mapping[str, str], body: Any) -> bool:
    """Whether sending this request twice cannot make a second copy of anything.

    GET, HEAD, PUT and DELETE are idempotent; POST is only when it is a conditional create
    (``If-None-Exist``), a ``_search``, or a transaction/batch Bundle whose every entry is.
    PATCH and a bare POST create never are.
    """
    method = method.upper()
    if method in {"GET", "HEAD", "PUT", "DELETE"}:
        return True
    if method != "POST":
        return False
    if any(k.lower() == "if-none-exist" for k in headers):
        return True
    if urlsplit(url).path.rstrip("/").endswith("/_search"):
        return True
    if isinstance(body, dict) and body.get("resourceType") == "Bundle":
        return body.get("type") in {"transaction", "batch"} and all(
            _entry_safe(e) for e in body.get("entry") or []
        )
    return False


def _entry_safe(entry: Any) -> bool:
    request = entry.get("request") if isinstance(entry, dict) else None
    if not isinstance(request, dict):
        return False
    method = str(request.get("method") or "").upper()
    url = str(request.get("url") or "")
    if method in {"GET", "HEAD", "PUT", "DELETE"}:
        return True
    if method == "POST":
        return bool(request.get("ifNoneExist")) or url.split("?", maxsplit=1)[0].endswith("_search")
    return False


def _retry_after(state: RetryCallState) -> float | None:
    exc = state.outcome.exception() if state.outcome is not None else None
    return exc.retry_after if isinstance(exc, FhirStatusError) else None


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    log.warning(
        "retrying after %s",
        type(exc).__name__,
        extra={
            "action": "fhir.retry",
            "attempt": state.attempt_number,
            "wait_seconds": round(state.upcoming_sleep, 3),
            "status": getattr(exc, "status", None),
            "resource_type": getattr(exc, "resource_type", None),
        },
    )
