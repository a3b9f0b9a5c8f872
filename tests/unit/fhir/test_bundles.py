"""Bundles: transactions and batches, read back entry by entry."""

from __future__ import annotations

import pytest

from fhir_bridge.errors import MalformedResponse
from fhir_bridge.fhir import entry_results
from tests.unit.fhir.fakes import BASE, GOAL, Script, fhir_json, outcome

pytestmark = pytest.mark.anyio


async def test_transaction_returns_the_response_bundle() -> None:
    """A transaction is POSTed to the base; entry_results reads ids and versions back."""
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0d3b6d1c-0000-4000-8000-000000000001",
                "resource": GOAL,
                "request": {"method": "PUT", "url": "Goal?identifier=urn:goal|g1"},
            }
        ],
    }
    answer = {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [
            {
                "response": {
                    "status": "201 Created",
                    "location": "Goal/g1/_history/1",
                    "etag": 'W/"1"',
                    "lastModified": "2025-03-01T10:00:00Z",
                }
            }
        ],
    }
    server = Script(fhir_json(answer))
    async with server.client() as fhir:
        response = await fhir.transaction(bundle)
    assert str(server.requests[0].url) == BASE
    [result] = entry_results(response)
    assert result.ok
    assert (result.status, result.resource_type, result.id, result.version_id) == (
        201,
        "Goal",
        "g1",
        "1",
    )
    assert result.last_modified == "2025-03-01T10:00:00Z"


async def test_batch_reports_each_entry_failure_with_its_outcome() -> None:
    """In a batch one entry can fail: its status and OperationOutcome are in entry_results."""
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": GOAL, "request": {"method": "PUT", "url": "Goal?identifier=urn:goal|1"}},
            {"resource": GOAL, "request": {"method": "PUT", "url": "Goal?identifier=urn:goal|2"}},
        ],
    }
    answer = {
        "resourceType": "Bundle",
        "type": "batch-response",
        "entry": [
            {"response": {"status": "200 OK", "location": "Goal/a/_history/2"}},
            {
                "response": {
                    "status": "412 Precondition Failed",
                    "outcome": outcome("processing", "matched 2 resources"),
                }
            },
        ],
    }
    server = Script(fhir_json(answer))
    async with server.client() as fhir:
        results = entry_results(await fhir.batch(bundle))
    assert [(r.status, r.ok) for r in results] == [(200, True), (412, False)]
    assert results[1].outcome.issues[0].diagnostics == "matched 2 resources"
    assert results[0].version_id == "2"


async def test_bundle_type_is_checked_before_sending() -> None:
    """transaction() refuses a batch Bundle (and the reverse) without sending."""
    server = Script(fhir_json({}))
    async with server.client() as fhir:
        with pytest.raises(ValueError, match="transaction"):
            await fhir.transaction({"resourceType": "Bundle", "type": "batch"})
    assert server.requests == []


async def test_transaction_answer_must_be_a_transaction_response() -> None:
    """A server answering a transaction with something else is MalformedResponse."""
    server = Script(fhir_json({"resourceType": "Bundle", "type": "searchset"}))
    async with server.client() as fhir:
        with pytest.raises(MalformedResponse):
            await fhir.transaction({"resourceType": "Bundle", "type": "transaction", "entry": []})
