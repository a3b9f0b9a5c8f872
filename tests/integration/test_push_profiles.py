"""Push and pull against the EHR-like sandbox profiles, which really refuse.

``epic_like_url`` (8090): CarePlan and Goal read-only (405), no ``_lastUpdated`` on the care
types (400), no transactions (405). ``oracle_like_url`` (8091): batch but no transaction, no
conditional create or update (400), If-Match required on update (412). Both require SMART
Backend Services: every request carries a token of ``full_access``, a client allowed every type,
so that what the bridge meets is the profile's refusals, not a scope's 403. Every request the
bridge sends goes through a counting transport, so "0 requests to a refused endpoint" is
counted, not assumed; the token requests go through it too and are kept apart (``tokens``).
``X-Sandbox-Clinician`` marks an edit made in the EHR itself.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_bridge import model as m
from fhir_bridge.documents import read_records
from fhir_bridge.fhir import FhirClient, RetryPolicy, SmartBackendServices
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import Puller, PullSummary, Pusher, PushSummary, server_limits
from tests.helpers import FIXTURES
from tests.integration.smart import SmartClient

pytestmark = pytest.mark.integration

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CONNECTION = "ehr"
CLINICIAN = {"X-Sandbox-Clinician": "true", "Cache-Control": "no-cache"}
PLAN = "cp-rivera-ccm"
GOAL = "goal-rivera-a1c"
REFERRAL = "ref-rivera-dsmes"
Json = dict[str, Any]


class KilledError(Exception):
    """The process died after the server took a request, before it read the answer."""


class Counting(httpx.AsyncBaseTransport):
    """Forwards to the real servers and keeps every request to the FHIR server in
    ``requests`` (those to the authorization server's token endpoint in ``tokens``); ``lie``
    rewrites the CapabilityStatement on the way (a server that declares more than it takes);
    ``kill_after`` raises once that many writes have reached the FHIR server."""

    def __init__(
        self, lie: Callable[[Json], None] | None = None, kill_after: int | None = None
    ) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.lie = lie
        self.kill_after = kill_after
        self.requests: list[httpx.Request] = []
        self.tokens: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not _to_fhir(request):
            self.tokens.append(request)
            return await self.inner.handle_async_request(request)
        self.requests.append(request)
        response = await self.inner.handle_async_request(request)
        if self.kill_after is not None and request.method in ("POST", "PUT"):
            self.kill_after -= 1
            if self.kill_after <= 0:
                await response.aread()
                await response.aclose()
                raise KilledError
        if self.lie is not None and request.url.path.endswith("/metadata"):
            await response.aread()
            await response.aclose()
            statement = json.loads(response.content)
            self.lie(statement)
            return httpx.Response(
                200, json=statement, headers={"Content-Type": "application/fhir+json"}
            )
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()

    def bundles(self, since: int = 0) -> list[Json]:
        return [
            json.loads(r.content)
            for r in self.requests[since:]
            if r.method == "POST" and r.url.path.rstrip("/").endswith("/fhir")
        ]

    def writes_to(self, resource_type: str, since: int = 0) -> int:
        """Writes of a type that reached the server: REST requests and Bundle entries."""
        rest = sum(
            1
            for r in self.requests[since:]
            if r.method in ("POST", "PUT")
            and r.url.path.rstrip("/").split("/fhir/")[-1].split("/")[0] == resource_type
        )
        entries = sum(
            1
            for b in self.bundles(since)
            for e in b.get("entry") or []
            if e["request"]["url"].split("?")[0].split("/")[0] == resource_type
        )
        return rest + entries


def _to_fhir(request: httpx.Request) -> bool:
    """Whether a request is to the FHIR server (base ``/fhir``), not the token endpoint."""
    path = request.url.path
    return path == "/fhir" or path.startswith("/fhir/")


@pytest.fixture
def auth(full_access: SmartClient) -> SmartBackendServices:
    """The SMART auth of a client allowed every type (tokens cached for the test)."""
    return full_access.auth()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
    s.put_records(read_records(FIXTURES / "cc-diabetes-heart-failure.json"), [CONNECTION], NOW)
    yield s
    s.close()


@pytest.fixture
def ctx() -> MappingContext:
    """A namespace of this test's own: the servers are shared by the whole session."""
    return MappingContext(namespace=f"https://bridge.test/{uuid.uuid4().hex[:10]}", now=NOW)


def _push(
    store: Store, url: str, ctx: MappingContext, transport: Counting, auth: httpx.Auth
) -> PushSummary:
    async def run() -> PushSummary:
        retry = RetryPolicy(max_attempts=2)
        async with FhirClient(url, auth=auth, transport=transport, retry=retry) as client:
            return await Pusher(store, client, CONNECTION, ctx).push()

    return asyncio.run(run())


def _pull(
    store: Store, url: str, ctx: MappingContext, transport: Counting, auth: httpx.Auth
) -> PullSummary:
    async def run() -> PullSummary:
        async with FhirClient(url, auth=auth, transport=transport) as client:
            return await Puller(store, client, CONNECTION, ctx).pull()

    return asyncio.run(run())


def _ours(
    url: str, auth: httpx.Auth, resource_type: str, system: str, value: str | None = None
) -> list[Json]:
    """The resources of a type carrying an identifier of ours (any value, or this one)."""
    token = f"{system}|{value}" if value is not None else f"{system}|"
    found: list[Json] = []
    next_url: str | None = f"{url}/{resource_type}"
    params: dict[str, str] | None = {"identifier": token, "_count": "200"}
    headers = {"Accept": "application/fhir+json", **CLINICIAN}
    with httpx.Client(auth=auth, headers=headers, timeout=60.0) as client:
        while next_url:
            bundle = client.get(next_url, params=params).json()
            found += [e["resource"] for e in bundle.get("entry") or []]
            next_url = next(
                (lnk["url"] for lnk in bundle.get("link") or [] if lnk["relation"] == "next"),
                None,
            )
            params = None
    return found


def _change_goal(store: Store, status: m.GoalAchievement) -> None:
    goal = store.records.get("goal", GOAL)
    assert isinstance(goal, m.Goal)
    goal.achievement_status = status
    store.put_records([goal], [CONNECTION], NOW)


# ------------------------------------------------------------------ epic-like


def test_epic_like_read_only_types_get_no_request_and_the_plan_goes_as_a_note(
    store: Store, ctx: MappingContext, epic_like_url: str, auth: SmartBackendServices
) -> None:
    counting = Counting()
    first = _push(store, epic_like_url, ctx, counting, auth)
    assert (first.failed, first.dead_lettered) == (0, 0)
    assert counting.tokens  # the token came through the same transport, counted apart
    # the CapabilityStatement says CarePlan and Goal are read-only: 0 requests to them
    assert counting.writes_to("CarePlan") == counting.writes_to("Goal") == 0
    assert {b["type"] for b in counting.bundles()} == {"batch"}  # no transaction declared
    assert store.outbox.blocked(CONNECTION) == {CONNECTION: {"CarePlan": 1, "Goal": 3}}
    (note,) = _ours(epic_like_url, auth, "DocumentReference", ctx.system("careplan_note"), PLAN)
    assert note["type"]["coding"][0]["code"] == "18776-5"
    not_sent = server_limits(store)[CONNECTION]["not_sent"]
    assert {(x["type"], x["source"]) for x in not_sent} >= {
        ("CarePlan", "capability-statement"),
        ("Goal", "capability-statement"),
    }

    mark = len(counting.requests)
    _change_goal(store, m.GoalAchievement.improving)
    again = _push(store, epic_like_url, ctx, counting, auth)
    assert (again.failed, again.updated) == (0, 1)  # the note, updated in place
    assert counting.writes_to("Goal", mark) == counting.writes_to("CarePlan", mark) == 0
    (updated,) = _ours(epic_like_url, auth, "DocumentReference", ctx.system("careplan_note"), PLAN)
    assert updated["id"] == note["id"]
    assert updated["meta"]["versionId"] == "2"


def _claims_everything(statement: Json) -> None:
    """An EHR whose statement declares transactions and writable care plans and goals."""
    for rest in statement["rest"]:
        rest["interaction"] = [*rest.get("interaction", []), {"code": "transaction"}]
        for resource in rest.get("resource") or []:
            codes = {i["code"] for i in resource.get("interaction") or []}
            resource["interaction"] = [{"code": c} for c in sorted(codes | {"create", "update"})]


def test_epic_like_refusals_learnt_at_run_time_are_remembered(
    store: Store, ctx: MappingContext, epic_like_url: str, auth: SmartBackendServices
) -> None:
    """The statement claims too much: the first run meets the real refusals (405 on the
    transaction, 405 on CarePlan and Goal), falls back, loses no record, and remembers; the
    next run sends no transaction and no CarePlan or Goal write."""
    counting = Counting(lie=_claims_everything)
    first = _push(store, epic_like_url, ctx, counting, auth)
    assert (first.failed, first.dead_lettered) == (0, 0)
    assert counting.bundles()[0]["type"] == "transaction"
    remembered = {r.what: r for r in store.refusals.of(CONNECTION)}
    assert remembered["transaction"].status == 405
    assert remembered["Goal:write"].status == remembered["CarePlan:write"].status == 405
    assert "transactions are not supported" in (remembered["transaction"].said or "")
    assert _ours(epic_like_url, auth, "Patient", ctx.system("patient"), "pat-rivera")

    _change_goal(store, m.GoalAchievement.improving)
    counting = Counting(lie=_claims_everything)
    again = _push(store, epic_like_url, ctx, counting, auth)
    assert (again.failed, again.dead_lettered) == (0, 0)
    assert {b["type"] for b in counting.bundles()} == {"batch"}  # 0 transactions
    assert counting.writes_to("Goal") == counting.writes_to("CarePlan") == 0
    # CarePlan is known read-only now: the plan goes as a note
    assert _ours(epic_like_url, auth, "DocumentReference", ctx.system("careplan_note"), PLAN)


def test_epic_like_pull_without_last_updated_finds_a_clinicians_edit(
    store: Store, ctx: MappingContext, epic_like_url: str, auth: SmartBackendServices
) -> None:
    counting = Counting()
    assert _push(store, epic_like_url, ctx, counting, auth).failed == 0
    assert _pull(store, epic_like_url, ctx, counting, auth).failed == 0  # watermarks set

    (task,) = _ours(epic_like_url, auth, "Task", ctx.system("referral_task"), REFERRAL)
    task["status"] = "in-progress"
    edited = httpx.put(
        f"{epic_like_url}/Task/{task['id']}",
        json=task,
        headers={"Content-Type": "application/fhir+json", **CLINICIAN},
        auth=auth,
        timeout=60.0,
    )
    assert edited.status_code == 200, edited.text

    mark = len(counting.requests)
    summary = _pull(store, epic_like_url, ctx, counting, auth)
    assert (summary.failed, summary.updated) == (0, 1), summary.problems
    referral = store.records.get("referral", REFERRAL)
    assert isinstance(referral, m.Referral)
    assert referral.tracking is not None
    assert referral.tracking.status is m.TrackingStatus.in_progress
    searches = [r for r in counting.requests[mark:] if r.method == "GET"]
    assert searches
    refused = ("/CarePlan", "/Goal", "/ServiceRequest", "/Task")  # the profile refuses these
    assert not [
        r for r in searches if "_lastUpdated" in r.url.params and r.url.path.endswith(refused)
    ]


# ------------------------------------------------------------------ oracle-like


def test_oracle_like_batches_search_then_write_with_if_match(
    store: Store, ctx: MappingContext, oracle_like_url: str, auth: SmartBackendServices
) -> None:
    counting = Counting()
    first = _push(store, oracle_like_url, ctx, counting, auth)
    assert (first.created, first.failed, first.dead_lettered) == (16, 0, 0)
    requests = [e["request"] for b in counting.bundles() for e in b["entry"]]
    assert {b["type"] for b in counting.bundles()} == {"batch"}
    assert all("?" not in r["url"] and "ifNoneExist" not in r for r in requests)
    assert any(r.method == "GET" and "identifier" in r.url.params for r in counting.requests)

    mark = len(counting.requests)
    _change_goal(store, m.GoalAchievement.improving)
    again = _push(store, oracle_like_url, ctx, counting, auth)
    assert (again.updated, again.failed) == (1, 0)
    (update,) = [e["request"] for b in counting.bundles(mark) for e in b["entry"]]
    assert update["method"] == "PUT"
    assert update["ifMatch"] == 'W/"1"'


def test_oracle_like_a_killed_push_then_run_again_makes_no_duplicates(
    store: Store, ctx: MappingContext, oracle_like_url: str, auth: SmartBackendServices
) -> None:
    """The process dies after the server took the second batch, before reading its answer:
    the next run finds those resources by identifier and updates them."""
    with pytest.raises(KilledError):
        _push(store, oracle_like_url, ctx, Counting(kill_after=2), auth)
    summary = _push(store, oracle_like_url, ctx, Counting(), auth)
    assert (summary.failed, summary.dead_lettered) == (0, 0)
    assert summary.updated > 0  # some were on the server already: found, not created again
    for resource_type, kind, value in [
        ("Patient", "patient", "pat-rivera"),
        ("Condition", "problem", None),
        ("Goal", "goal", None),
        ("ServiceRequest", "referral", REFERRAL),
        ("CarePlan", "careplan", PLAN),
    ]:
        found = _ours(oracle_like_url, auth, resource_type, ctx.system(kind), value)
        system = ctx.system(kind)
        ours = [i["value"] for r in found for i in r["identifier"] if i["system"] == system]
        assert ours, resource_type
        assert len(ours) == len(set(ours)), f"duplicates of {resource_type}"
