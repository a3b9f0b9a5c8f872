"""Retries: what is retried, how long the client waits, and when it gives up."""

from __future__ import annotations

from email.utils import formatdate
from typing import Any

import httpx
import pytest

from fhir_bridge.errors import FhirStatusError, FhirTransportError, RateLimited
from fhir_bridge.fhir import RetryPolicy, is_safe_to_repeat, parse_retry_after
from tests.unit.fhir.fakes import BASE, PATIENT, START, FakeTime, Script, fhir_json, outcome, policy

pytestmark = pytest.mark.anyio

UNAVAILABLE = fhir_json(outcome("transient", "busy"), 503)
NEW_PATIENT = {"resourceType": "Patient", "identifier": [{"system": "urn:s", "value": "1"}]}


# --- the policy as a value ----------------------------------------------------------------


def test_backoff_doubles_with_jitter_up_to_max_delay() -> None:
    """Backoff doubles from base_delay; jitter keeps it between half and all; max_delay caps."""
    low = RetryPolicy(base_delay=1.0, max_delay=5.0, jitter=lambda: 0.0)
    high = RetryPolicy(base_delay=1.0, max_delay=5.0, jitter=lambda: 1.0)
    assert [low.backoff(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 2.5]
    assert [high.backoff(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]


def test_retry_after_wins_over_backoff_and_is_capped() -> None:
    """A server-given wait is used as is, up to max_retry_after."""
    p = RetryPolicy(max_retry_after=30.0, jitter=lambda: 0.0)
    assert p.wait(1, 12.0) == 12.0
    assert p.wait(1, 3600.0) == 30.0
    assert p.wait(1, None) == p.backoff(1)


def test_parse_retry_after_seconds_and_http_date() -> None:
    """Retry-After is delta-seconds or an HTTP-date (a past date means now); junk is ignored."""
    assert parse_retry_after("120", START) == 120.0
    assert parse_retry_after(formatdate(START + 45, usegmt=True), START) == 45.0
    assert parse_retry_after(formatdate(START - 45, usegmt=True), START) == 0.0
    assert parse_retry_after("soon", START) is None
    assert parse_retry_after(None, START) is None


@pytest.mark.parametrize(
    ("method", "url", "headers", "body", "safe"),
    [
        ("GET", f"{BASE}/Patient", {}, None, True),
        ("PUT", f"{BASE}/Patient/1", {}, {}, True),
        ("DELETE", f"{BASE}/Patient/1", {}, None, True),
        ("POST", f"{BASE}/Patient", {}, NEW_PATIENT, False),
        ("POST", f"{BASE}/Patient", {"If-None-Exist": "identifier=urn:s|1"}, NEW_PATIENT, True),
        ("POST", f"{BASE}/Patient/_search", {}, None, True),
        ("PATCH", f"{BASE}/Patient/1", {}, [], False),
    ],
)
def test_which_requests_are_safe_to_repeat(
    method: str, url: str, headers: dict[str, str], body: object, safe: bool
) -> None:
    """GET/PUT/DELETE, conditional create and _search repeat safely; bare POST and PATCH not."""
    assert is_safe_to_repeat(method, url, headers, body) is safe


def _bundle(kind: str, *requests: dict[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [{"resource": {"resourceType": "Patient"}, "request": r} for r in requests],
    }


@pytest.mark.parametrize(
    ("bundle", "safe"),
    [
        (
            _bundle(
                "transaction",
                {"method": "PUT", "url": "Patient?identifier=urn:s|1"},
                {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=urn:s|2"},
                {"method": "GET", "url": "Patient/1"},
                {"method": "DELETE", "url": "Patient/2"},
            ),
            True,
        ),
        (_bundle("batch", {"method": "PUT", "url": "Patient?identifier=urn:s|1"}), True),
        (
            _bundle(
                "transaction",
                {"method": "PUT", "url": "Patient?identifier=urn:s|1"},
                {"method": "POST", "url": "Patient"},
            ),
            False,
        ),
        (_bundle("batch", {"method": "PATCH", "url": "Patient/1"}), False),
    ],
)
def test_bundles_are_safe_only_when_every_entry_is(bundle: dict[str, Any], safe: bool) -> None:
    """One bare POST entry makes a whole transaction or batch unsafe to resend."""
    assert is_safe_to_repeat("POST", BASE, {}, bundle) is safe


# --- the client retrying --------------------------------------------------------------------


async def test_429_with_retry_after_seconds_is_honoured(fake_time: FakeTime) -> None:
    """A 429 with Retry-After: 7 makes the client wait exactly 7 s, then succeed."""
    server = Script(fhir_json({}, 429, {"Retry-After": "7"}), fhir_json(PATIENT))
    async with server.client(fake_time) as fhir:
        assert (await fhir.read("Patient", "p1"))["id"] == "p1"
    assert fake_time.sleeps == [7.0]
    assert len(server.requests) == 2


async def test_429_with_retry_after_http_date_is_honoured(fake_time: FakeTime) -> None:
    """A Retry-After HTTP-date 20 s ahead of the (injected) clock means a 20 s wait."""
    later = formatdate(START + 20, usegmt=True)
    server = Script(fhir_json({}, 429, {"Retry-After": later}), fhir_json(PATIENT))
    async with server.client(fake_time) as fhir:
        await fhir.read("Patient", "p1")
    assert fake_time.sleeps == [20.0]


async def test_retry_after_is_capped(fake_time: FakeTime) -> None:
    """A server asking for an hour gets max_retry_after instead."""
    server = Script(fhir_json({}, 429, {"Retry-After": "3600"}), fhir_json(PATIENT))
    retry = policy(fake_time, max_retry_after=15.0, max_total_seconds=100.0)
    async with server.client(retry=retry) as fhir:
        await fhir.read("Patient", "p1")
    assert fake_time.sleeps == [15.0]


async def test_503_storm_then_success(fake_time: FakeTime) -> None:
    """Three 503s then 200: waits of 1, 2, 4 s backoff at mid jitter (x0.75), then the data."""
    server = Script(UNAVAILABLE, UNAVAILABLE, UNAVAILABLE, fhir_json(PATIENT))
    retry = policy(fake_time, base_delay=1.0, max_delay=10.0)
    async with server.client(retry=retry) as fhir:
        assert (await fhir.read("Patient", "p1"))["id"] == "p1"
    assert fake_time.sleeps == [0.75, 1.5, 3.0]


async def test_503_beyond_max_attempts_raises_with_retry_info(fake_time: FakeTime) -> None:
    """After max_attempts 503s the error carries status, outcome and the attempt count."""
    server = Script(UNAVAILABLE)
    async with server.client(retry=policy(fake_time, max_attempts=4)) as fhir:
        with pytest.raises(FhirStatusError) as caught:
            await fhir.read("Patient", "p1")
    assert caught.value.status == 503
    assert caught.value.attempts == 4
    assert caught.value.outcome.codes == ("transient",)
    assert len(server.requests) == 4
    assert len(fake_time.sleeps) == 3


async def test_gives_up_rather_than_sleep_past_max_total_seconds(fake_time: FakeTime) -> None:
    """No sleep may end past max_total_seconds: with 10 s budget and 4 s waits, two retries."""
    server = Script(fhir_json({}, 503, {"Retry-After": "4"}))
    retry = policy(fake_time, max_attempts=10, max_total_seconds=10.0)
    async with server.client(retry=retry) as fhir:
        with pytest.raises(FhirStatusError) as caught:
            await fhir.read("Patient", "p1")
    assert fake_time.sleeps == [4.0, 4.0]
    assert caught.value.attempts == 3
    assert caught.value.retry_after == 4.0


async def test_rate_limit_longer_than_budget_raises_at_once(fake_time: FakeTime) -> None:
    """A Retry-After beyond the time budget is not slept: RateLimited carries retry_after."""
    server = Script(fhir_json({}, 429, {"Retry-After": "90"}))
    retry = policy(fake_time, max_total_seconds=60.0)
    async with server.client(retry=retry) as fhir:
        with pytest.raises(RateLimited) as caught:
            await fhir.read("Patient", "p1")
    assert caught.value.retry_after == 90.0
    assert fake_time.sleeps == []


@pytest.mark.parametrize("failure", [httpx.ConnectTimeout, httpx.ReadTimeout, httpx.ConnectError])
async def test_transport_failures_are_retried(
    fake_time: FakeTime, failure: type[httpx.TransportError]
) -> None:
    """Connect and read timeouts and refused connections are retried for safe requests."""
    server = Script(failure, fhir_json(PATIENT))
    async with server.client(fake_time) as fhir:
        await fhir.read("Patient", "p1")
    assert len(server.requests) == 2


async def test_transport_failure_beyond_attempts_names_only_the_error_class(
    fake_time: FakeTime,
) -> None:
    """The final transport error says which httpx error and where, without the query."""
    server = Script(httpx.ReadTimeout)
    async with server.client(retry=policy(fake_time, max_attempts=2)) as fhir:
        with pytest.raises(FhirTransportError) as caught:
            await fhir.conditional_update(NEW_PATIENT, "identifier=urn:s|secret-mrn")
    assert caught.value.error_type == "ReadTimeout"
    assert caught.value.attempts == 2
    assert "secret-mrn" not in str(caught.value)
    assert str(caught.value) == "ReadTimeout on PUT Patient"


async def test_bare_post_create_is_not_retried_after_503(fake_time: FakeTime) -> None:
    """A plain create might have been applied: it is sent once and the 503 raised."""
    server = Script(UNAVAILABLE, fhir_json(PATIENT, 201))
    async with server.client(fake_time) as fhir:
        with pytest.raises(FhirStatusError) as caught:
            await fhir.create(NEW_PATIENT)
    assert caught.value.status == 503
    assert len(server.requests) == 1
    assert fake_time.sleeps == []


async def test_bare_post_create_is_not_retried_after_timeout(fake_time: FakeTime) -> None:
    """A read timeout on a plain create is raised, never resent."""
    server = Script(httpx.ReadTimeout, fhir_json(PATIENT, 201))
    async with server.client(fake_time) as fhir:
        with pytest.raises(FhirTransportError):
            await fhir.create(NEW_PATIENT)
    assert len(server.requests) == 1


async def test_conditional_create_is_retried(fake_time: FakeTime) -> None:
    """With If-None-Exist a resent create cannot duplicate, so a 503 is retried."""
    server = Script(UNAVAILABLE, fhir_json(PATIENT, 201))
    async with server.client(fake_time) as fhir:
        result = await fhir.create(NEW_PATIENT, if_none_exist="identifier=urn:s|1")
    assert result.created
    assert len(server.requests) == 2
    assert all(r.headers["If-None-Exist"] == "identifier=urn:s|1" for r in server.requests)


async def test_transaction_with_bare_post_is_not_retried(fake_time: FakeTime) -> None:
    """A transaction holding a bare POST entry is sent once."""
    bundle = _bundle("transaction", {"method": "POST", "url": "Patient"})
    server = Script(UNAVAILABLE)
    async with server.client(fake_time) as fhir:
        with pytest.raises(FhirStatusError):
            await fhir.transaction(bundle)
    assert len(server.requests) == 1


async def test_transaction_with_bare_post_is_retried_when_the_server_never_acted(
    fake_time: FakeTime,
) -> None:
    """A 429 (refused before any work) and a connection that could not be made are retried
    even for a transaction holding a bare POST (push's Provenance); a read timeout is not."""
    bundle = _bundle("transaction", {"method": "POST", "url": "Provenance"})
    response = {"resourceType": "Bundle", "type": "transaction-response", "entry": []}
    refused = Script(
        fhir_json({}, 429, {"Retry-After": "3"}), httpx.ConnectError, fhir_json(response)
    )
    async with refused.client(fake_time) as fhir:
        assert (await fhir.transaction(bundle))["type"] == "transaction-response"
    assert len(refused.requests) == 3
    assert fake_time.sleeps[0] == 3.0
    timed_out = Script(httpx.ReadTimeout, fhir_json(response))
    async with timed_out.client(fake_time) as fhir:
        with pytest.raises(FhirTransportError):
            await fhir.transaction(bundle)
    assert len(timed_out.requests) == 1


async def test_conditional_transaction_is_retried(fake_time: FakeTime) -> None:
    """A transaction of conditional entries is resent after a 502."""
    bundle = _bundle("transaction", {"method": "PUT", "url": "Patient?identifier=urn:s|1"})
    response = {"resourceType": "Bundle", "type": "transaction-response", "entry": []}
    server = Script(fhir_json({}, 502), fhir_json(response))
    async with server.client(fake_time) as fhir:
        assert (await fhir.transaction(bundle))["type"] == "transaction-response"
    assert len(server.requests) == 2


async def test_a_transaction_answered_500_is_sent_once_more(fake_time: FakeTime) -> None:
    """An answered transaction that failed was rolled back whole: a 500 (a clash with a
    concurrent transaction on the server) is sent once more, even with a bare POST in it; a
    second 500 is raised, and a batch's 500 is not resent (its entries stand alone)."""
    bundle = _bundle("transaction", {"method": "POST", "url": "Provenance"})
    response = {"resourceType": "Bundle", "type": "transaction-response", "entry": []}
    clash = fhir_json(outcome("exception", "rolled back"), 500)
    once = Script(clash, fhir_json(response))
    async with once.client(fake_time) as fhir:
        assert (await fhir.transaction(bundle))["type"] == "transaction-response"
    assert len(once.requests) == 2
    twice = Script(clash, clash, fhir_json(response))
    async with twice.client(fake_time) as fhir:
        with pytest.raises(FhirStatusError):
            await fhir.transaction(bundle)
    assert len(twice.requests) == 2
    batch = Script(clash, fhir_json({**response, "type": "batch-response"}))
    async with batch.client(fake_time) as fhir:
        with pytest.raises(FhirStatusError):
            await fhir.batch({**bundle, "type": "batch"})
    assert len(batch.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 412, 422, 500])
async def test_other_statuses_are_not_retried(fake_time: FakeTime, status: int) -> None:
    """Only 429/502/503/504 are retried: other errors surface on the first answer."""
    server = Script(fhir_json(outcome("processing"), status))
    async with server.client(fake_time) as fhir:
        with pytest.raises(FhirStatusError):
            await fhir.read("Patient", "p1")
    assert len(server.requests) == 1
