"""Push adapts to what the server says it can do, and holds back what it cannot write.

The server is the real HAPI sandbox; only its CapabilityStatement is rewritten on the way
(an EHR that declares no transactions, or read-only care plans), and requests are counted.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from fhir_bridge import model as m
from fhir_bridge.documents import read_records
from fhir_bridge.fhir import FhirClient
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import Pusher, PushSummary
from tests.helpers import FIXTURES

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
Statement = dict[str, Any]


class RewritingTransport(httpx.AsyncBaseTransport):
    """Forwards to the real server; rewrites /metadata; counts requests by method and path head."""

    def __init__(self, rewrite: Callable[[Statement], None]) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.rewrite = rewrite
        self.seen: Counter[str] = Counter()
        self.requests: list[tuple[str, str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        head = request.url.path.rstrip("/").split("/fhir")[-1].strip("/").split("/")[0] or "(base)"
        self.seen[f"{request.method} {head}"] += 1
        self.requests.append((request.method, head, request.url.query.decode()))
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith("/metadata"):
            await response.aread()
            await response.aclose()
            statement = json.loads(response.content)
            self.rewrite(statement)
            return httpx.Response(
                200, json=statement, headers={"Content-Type": "application/fhir+json"}
            )
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def _no_bundles(statement: Statement) -> None:
    for rest in statement["rest"]:
        rest["interaction"] = [
            i for i in rest.get("interaction", []) if i["code"] not in ("transaction", "batch")
        ]


def _read_only_care_plans(statement: Statement) -> None:
    for rest in statement["rest"]:
        for resource in rest["resource"]:
            if resource["type"] == "CarePlan":
                resource["interaction"] = [{"code": "read"}, {"code": "search-type"}]


def _no_conditional_update(statement: Statement) -> None:
    _no_bundles(statement)
    for rest in statement["rest"]:
        for resource in rest["resource"]:
            resource["conditionalUpdate"] = False


def _push(
    store: Store, url: str, ctx: MappingContext, transport: httpx.AsyncBaseTransport | None
) -> PushSummary:
    async def run() -> PushSummary:
        async with FhirClient(url, transport=transport) as client:
            return await Pusher(store, client, "ehr", ctx).push()

    return asyncio.run(run())


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(database_url)
    s.put_records(read_records(FIXTURES / "cc-diabetes-heart-failure.json"), ["ehr"], NOW)
    yield s
    s.close()


def _ctx() -> MappingContext:
    return MappingContext(namespace=f"https://bridge.test/{uuid.uuid4().hex[:10]}", now=NOW)


def test_without_transactions_single_conditional_writes_in_dependency_order(
    store: Store, fhir_base_url: str
) -> None:
    """No transaction or batch declared: one conditional PUT per resource, nothing else."""
    transport = RewritingTransport(_no_bundles)
    summary = _push(store, fhir_base_url, _ctx(), transport)
    assert summary.failed == summary.dead_lettered == 0
    assert transport.seen["POST (base)"] == 0
    puts = sum(n for key, n in transport.seen.items() if key.startswith("PUT "))
    assert puts == summary.created + summary.updated > 0


def test_read_only_care_plans_are_reported_and_never_attempted(
    store: Store, fhir_base_url: str
) -> None:
    """A type the server cannot write waits (blocked) with the reason, and is not sent; the
    plan's content goes as a plan-of-care note (DocumentReference) instead."""
    transport = RewritingTransport(_read_only_care_plans)
    ctx = _ctx()
    summary = _push(store, fhir_base_url, ctx, transport)
    assert summary.not_supported == 1
    assert store.outbox.dead_letters("ehr") == []
    (waiting,) = store.outbox.blocked_entries("ehr")
    assert waiting.kind == "careplan"
    assert "read-only" in (waiting.last_error or "")
    assert "plan-of-care note" in (waiting.last_error or "")
    assert not [r for r in transport.requests if r[0] in ("PUT", "POST") and r[1] == "CarePlan"]

    async def plans() -> int:
        async with FhirClient(fhir_base_url) as client:
            found = [
                r
                async for r in client.search(
                    "CarePlan", {"identifier": f"{ctx.system('careplan')}|"}
                )
            ]
            return len(found)

    assert asyncio.run(plans()) == 0
    assert summary.created > 0  # everything else went through


def test_a_refused_record_is_dead_lettered_with_the_servers_reason(
    store: Store, fhir_base_url: str
) -> None:
    """One bad record does not block the others; its dead letter carries the server's message."""
    bad = m.Goal(
        id="goal-broken-reference",
        updated_at=NOW,
        patient="pat-rivera",
        description=m.Concept(text="Points at a resource type the server does not know"),
        lifecycle_status=m.GoalLifecycle.active,
        addresses=[m.Ref(reference="Unicorn/no-such-thing")],
    )
    store.put_records([bad], ["ehr"], NOW)
    summary = _push(store, fhir_base_url, _ctx(), None)
    assert summary.dead_lettered == 1
    assert summary.created > 0
    (dead,) = store.outbox.dead_letters("ehr")
    assert dead.record_id == "goal-broken-reference"
    assert "no-such-condition-anywhere" in (dead.last_error or "") or "HTTP 4" in (
        dead.last_error or ""
    )
    # the refused transaction was sent again entry by entry: the patient's other resources
    # still point at the Patient created a moment before them, not just at its identifier
    (patient,) = [link for link in store.links.of_connection("ehr") if link.kind == "patient"]
    goals = [link for link in store.links.of_connection("ehr") if link.resource_type == "Goal"]
    assert goals
    for goal in goals:
        on_server = httpx.get(
            f"{fhir_base_url}/Goal/{goal.resource_id}",
            headers={"Accept": "application/fhir+json"},
        ).json()
        assert on_server["subject"]["reference"] == f"Patient/{patient.resource_id}"


def test_without_conditional_update_it_searches_then_writes(
    store: Store, fhir_base_url: str
) -> None:
    """No conditional update: search by identifier, then create; later changes update."""
    ctx = _ctx()
    transport = RewritingTransport(_no_conditional_update)
    first = _push(store, fhir_base_url, ctx, transport)
    assert first.failed == first.dead_lettered == 0
    assert not [r for r in transport.requests if r[0] == "PUT" and r[2]]  # no PUT Type?query
    assert any(r[0] == "GET" and "identifier" in r[2] for r in transport.requests)
    creates = [r for r in transport.requests if r[0] == "POST"]
    assert len(creates) == first.created

    goal = next(r for r in store.records.of_patient("pat-rivera") if isinstance(r, m.Goal))
    goal.status_date = "2025-03-02"
    store.put_records([goal], ["ehr"], NOW)
    second = _push(store, fhir_base_url, ctx, RewritingTransport(_no_conditional_update))
    assert (second.created, second.updated) == (0, 1)
