"""Writes: create, conditional create, update, conditional update, delete."""

from __future__ import annotations

import json

import httpx
import pytest

from fhir_bridge.fhir import if_match_value, version_of_etag
from tests.unit.fhir.fakes import BASE, GOAL, PATIENT, Script, fhir_json, outcome

pytestmark = pytest.mark.anyio


async def test_create_returns_ids_from_location_and_etag() -> None:
    """A 201 create reports created, id and version (Location), ETag and representation."""
    created = {
        **GOAL,
        "id": "g9",
        "meta": {"versionId": "1", "lastUpdated": "2025-03-01T10:00:00Z"},
    }
    server = Script(
        fhir_json(
            created,
            201,
            {"Location": f"{BASE}/Goal/g9/_history/1", "ETag": 'W/"1"'},
        )
    )
    async with server.client() as fhir:
        result = await fhir.create(GOAL)
    request = server.requests[0]
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/fhir+json"
    assert request.headers["Prefer"] == "return=representation"
    assert "If-None-Exist" not in request.headers
    assert json.loads(request.content) == GOAL
    assert result.created
    assert (result.status, result.id, result.version_id, result.etag) == (201, "g9", "1", 'W/"1"')
    assert result.last_modified == "2025-03-01T10:00:00Z"
    assert result.resource == created


async def test_conditional_create_that_matches_reports_not_created() -> None:
    """If-None-Exist matching one resource: 200, created=False, the existing resource's id."""
    existing = {**GOAL, "id": "g1", "meta": {"versionId": "4"}}
    server = Script(fhir_json(existing, 200))
    async with server.client() as fhir:
        result = await fhir.create(GOAL, if_none_exist="Goal?identifier=urn:goal|g1")
    assert server.requests[0].headers["If-None-Exist"] == "identifier=urn:goal|g1"
    assert not result.created
    assert (result.id, result.version_id) == ("g1", "4")


async def test_minimal_return_gives_no_resource_but_ids_from_headers() -> None:
    """With Prefer: return=minimal the server sends no body: ids come from Location/ETag."""
    server = Script(
        httpx.Response(
            201,
            headers={
                "Location": "Goal/g2/_history/1",
                "ETag": 'W/"1"',
                "Last-Modified": "Sat, 01 Mar 2025 10:00:00 GMT",
            },
        )
    )
    async with server.client(prefer="return=minimal") as fhir:
        result = await fhir.create(GOAL)
    assert server.requests[0].headers["Prefer"] == "return=minimal"
    assert result.resource is None
    assert (result.id, result.version_id) == ("g2", "1")
    assert result.last_modified == "2025-03-01T10:00:00+00:00"


async def test_update_puts_type_id_with_weak_if_match() -> None:
    """update PUTs Type/id; a bare version id becomes If-Match: W/"n"."""
    updated = {**PATIENT, "meta": {"versionId": "4"}}
    server = Script(fhir_json(updated, 200, {"ETag": 'W/"4"'}))
    async with server.client() as fhir:
        result = await fhir.update(PATIENT, if_match="3")
    request = server.requests[0]
    assert (request.method, request.url.path) == ("PUT", "/fhir/Patient/p1")
    assert request.headers["If-Match"] == 'W/"3"'
    assert (result.id, result.version_id, result.created) == ("p1", "4", False)


async def test_update_without_if_match_sends_none() -> None:
    """No If-Match header unless a version is given."""
    server = Script(fhir_json(PATIENT))
    async with server.client() as fhir:
        await fhir.update(PATIENT)
    assert "If-Match" not in server.requests[0].headers


async def test_conditional_update_puts_the_query_as_given() -> None:
    """conditional_update PUTs Type?query (token search with '|'), If-Match optional."""
    server = Script(fhir_json({**GOAL, "id": "g1", "meta": {"versionId": "1"}}, 201))
    async with server.client() as fhir:
        result = await fhir.conditional_update(GOAL, "identifier=urn:goal|g1", if_match='W/"7"')
    request = server.requests[0]
    assert str(request.url) == f"{BASE}/Goal?identifier=urn:goal|g1"
    assert request.headers["If-Match"] == 'W/"7"'
    assert result.created
    assert result.id == "g1"


async def test_delete() -> None:
    """delete sends DELETE Type/id; the answer's OperationOutcome is not a resource."""
    server = Script(fhir_json(outcome("informational", severity="information"), 200))
    async with server.client() as fhir:
        result = await fhir.delete("Patient", "p1")
    assert server.requests[0].method == "DELETE"
    assert (result.status, result.id, result.resource) == (200, "p1", None)


def test_etag_and_if_match_formats() -> None:
    """W/"3" means version 3; a version id is sent as W/"3"; an ETag is kept as given."""
    assert version_of_etag('W/"3"') == "3"
    assert version_of_etag('"3"') == "3"
    assert version_of_etag(None) is None
    assert if_match_value("3") == 'W/"3"'
    assert if_match_value('W/"3"') == 'W/"3"'
