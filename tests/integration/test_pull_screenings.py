"""Screenings against the real HAPI server (shared: each test pushes under a namespace of its
own): the QuestionnaireResponse and its Observations go out, the health concern names the
grouping Observation, and an EHR edit to the response comes back once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from fhir_bridge import model as m
from fhir_bridge.documents import read_records
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from tests.helpers import FIXTURES
from tests.integration.sync_calls import find_on_server, pull, push_cleanly

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
FIXTURE = FIXTURES / "month-diabetes-depression.json"


@pytest.fixture
def pushed(database_url: str, fhir_base_url: str) -> Iterator[tuple[Store, MappingContext]]:
    """The month fixture (screenings, a health concern they raised) pushed and pulled once."""
    ctx = MappingContext(namespace=f"https://bridge.test/{uuid.uuid4().hex[:10]}", now=NOW)
    store = Store(database_url)
    store.put_records(read_records(FIXTURE), ["hapi"], NOW)
    push_cleanly(store, fhir_base_url, ctx)
    first = pull(store, fhir_base_url, ctx)
    assert (first.new, first.updated, first.failed) == (0, 0, 0), first.problems
    yield store, ctx
    store.close()


def test_a_screening_is_on_the_server_as_a_response_and_the_observations_derived_from_it(
    pushed: tuple[Store, MappingContext], fhir: httpx.Client
) -> None:
    store, ctx = pushed
    hrsn = store.records.get("screening", "scr-mendes-hrsn")
    assert isinstance(hrsn, m.Screening)
    response = find_on_server(fhir, "QuestionnaireResponse", ctx, "screening", hrsn.id)
    group = find_on_server(fhir, "Observation", ctx, "screening_observation", hrsn.id)
    assert group["derivedFrom"][0]["reference"] == f"QuestionnaireResponse/{response['id']}"
    assert len(group["hasMember"]) == len(hrsn.answers)
    for member in group["hasMember"]:
        answer = fhir.get(f"/{member['reference']}", headers={"Cache-Control": "no-cache"}).json()
        assert answer["derivedFrom"][0]["reference"] == f"QuestionnaireResponse/{response['id']}"
    concern = find_on_server(fhir, "Condition", ctx, "problem", "prob-mendes-food")
    assert concern["evidence"][0]["detail"][0]["reference"] == f"Observation/{group['id']}"
    goal = find_on_server(fhir, "Goal", ctx, "goal", "goal-mendes-food")
    assert goal["addresses"][0]["reference"] == f"Condition/{concern['id']}"


def test_an_ehr_edit_to_a_response_comes_back_once_keeping_the_findings(
    pushed: tuple[Store, MappingContext], fhir_base_url: str, fhir: httpx.Client
) -> None:
    store, ctx = pushed
    before = store.records.get("screening", "scr-mendes-phq9")
    assert isinstance(before, m.Screening)
    response = find_on_server(fhir, "QuestionnaireResponse", ctx, "screening", "scr-mendes-phq9")
    response["status"] = "amended"
    total = next(i for i in response["item"] if i["linkId"] == "/44261-6")
    total["answer"] = [{"valueDecimal": 11}]
    put = fhir.put(f"/QuestionnaireResponse/{response['id']}", json=response)
    assert put.status_code == 200, put.text

    summary = pull(store, fhir_base_url, ctx)
    assert (summary.updated, summary.conflicts, summary.failed) == (1, 0, 0), summary.problems
    after = store.records.get("screening", "scr-mendes-phq9")
    assert isinstance(after, m.Screening)
    assert after.status is m.ScreeningStatus.amended
    assert after.score == 11
    assert after.answers == before.answers

    again = pull(store, fhir_base_url, ctx)
    assert (again.new, again.updated, again.conflicts) == (0, 0, 0)
