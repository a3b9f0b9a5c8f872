"""The client's requests and answers: headers, writes, paging, history, bundles, concurrency."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from fhir_bridge.errors import MalformedResponse
from fhir_bridge.fhir import (
    FhirClient,
    entry_results,
    if_match_value,
    version_of_etag,
)
from tests.unit.fhir.fakes import BASE, PATIENT, Script, fhir_json, outcome

pytestmark = pytest.mark.anyio

GOAL = {
    "resourceType": "Goal",
    "identifier": [{"system": "urn:goal", "value": "g1"}],
    "lifecycleStatus": "active",
}


def page(
    ids: list[str], next_url: str | None = None, *, included: Sequence[str] = ()
) -> dict[str, Any]:
    entries = [
        {"resource": {"resourceType": "Goal", "id": i}, "search": {"mode": "match"}} for i in ids
    ]
    entries += [
        {"resource": {"resourceType": "Patient", "id": i}, "search": {"mode": "include"}}
        for i in included
    ]
    links = [{"relation": "self", "url": f"{BASE}/Goal"}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    return {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": entries}


# --- headers and reads --------------------------------------------------------------------


async def test_read_sends_fhir_json_accept_and_returns_the_resource() -> None:
    """GET Type/id with Accept: application/fhir+json; the parsed resource comes back."""
    server = Script(fhir_json(PATIENT))
    async with server.client() as fhir:
        assert await fhir.read("Patient", "p1") == PATIENT
    request = server.requests[0]
    assert request.method == "GET"
    assert str(request.url) == f"{BASE}/Patient/p1"
    assert request.headers["Accept"] == "application/fhir+json"


async def test_vread_reads_one_version() -> None:
    """vread asks for Type/id/_history/vid."""
    server = Script(fhir_json(PATIENT))
    async with server.client() as fhir:
        await fhir.vread("Patient", "p1", "3")
    assert server.requests[0].url.path == "/fhir/Patient/p1/_history/3"


@pytest.mark.parametrize("bad", ["../metadata", "p1?x=1", "p 1", "", "a" * 65])
async def test_ids_that_would_change_the_path_are_refused(bad: str) -> None:
    """An id is never allowed to add path segments or a query."""
    server = Script(fhir_json(PATIENT))
    async with server.client() as fhir:
        with pytest.raises(ValueError, match="not a FHIR id"):
            await fhir.read("Patient", bad)
    assert server.requests == []


async def test_extra_headers_are_sent() -> None:
    """Headers given to the client go with every request."""
    server = Script(fhir_json(PATIENT))
    async with server.client(headers={"X-Request-Source": "bridge"}) as fhir:
        await fhir.read("Patient", "p1")
    assert server.requests[0].headers["X-Request-Source"] == "bridge"


# --- writes ---------------------------------------------------------------------------------


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


# --- paging ---------------------------------------------------------------------------------


async def test_search_follows_absolute_next_links_exactly_and_stops() -> None:
    """Every page's next link is requested verbatim; the last page (no next) ends the search."""
    link2 = f"{BASE}?_getpages=abc&_getpagesoffset=2&_count=2&_bundletype=searchset"
    link3 = f"{BASE}?_getpages=abc&_getpagesoffset=4&_count=2&_bundletype=searchset"
    server = Script(
        fhir_json(page(["g1", "g2"], link2)),
        fhir_json(page(["g3", "g4"], link3)),
        fhir_json(page(["g5"])),
    )
    async with server.client() as fhir:
        ids = [r["id"] async for r in fhir.search("Goal", {"patient": "Patient/p1", "_count": 2})]
    assert ids == ["g1", "g2", "g3", "g4", "g5"]
    assert [str(r.url) for r in server.requests] == [
        f"{BASE}/Goal?patient=Patient%2Fp1&_count=2",
        link2,
        link3,
    ]
    assert all(r.headers["Cache-Control"] == "no-cache" for r in server.requests)


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("Goal?page=2&x=a|b", f"{BASE}/Goal?page=2&x=a|b"),
        ("?_getpages=abc&_getpagesoffset=2", f"{BASE}?_getpages=abc&_getpagesoffset=2"),
        ("/fhir/Goal?cursor=Zm9v%3D", "https://ehr.test/fhir/Goal?cursor=Zm9v%3D"),
    ],
)
async def test_relative_next_links_resolve_against_the_base(link: str, expected: str) -> None:
    """Relative links resolve against the service base (or host for '/...'), text untouched."""
    server = Script(fhir_json(page(["g1"], link)), fhir_json(page(["g2"])))
    async with server.client() as fhir:
        ids = [r["id"] async for r in fhir.search("Goal")]
    assert ids == ["g1", "g2"]
    assert str(server.requests[1].url) == expected


async def test_next_link_to_another_host_is_refused() -> None:
    """Credentials never follow a next link to another server."""
    server = Script(fhir_json(page(["g1"], "https://evil.test/fhir?page=2")))
    async with server.client() as fhir:
        with pytest.raises(MalformedResponse, match="another server"):
            _ = [r async for r in fhir.search("Goal")]
    assert len(server.requests) == 1


async def test_a_next_link_that_loops_is_an_error_not_an_endless_search() -> None:
    """A server that keeps sending the same next link stops the search with an error."""
    loop = f"{BASE}/Goal?page=2"
    server = Script(fhir_json(page(["g1"], loop)))
    async with server.client() as fhir:
        with pytest.raises(MalformedResponse, match="repeats"):
            _ = [r async for r in fhir.search("Goal")]
    assert len(server.requests) == 2


async def test_included_resources_only_on_request() -> None:
    """Entries in include mode are skipped unless include=True."""
    server = Script(fhir_json(page(["g1"], included=["p1"])))
    async with server.client() as fhir:
        plain = [r["id"] async for r in fhir.search("Goal", {"_include": "Goal:subject"})]
        both = [r["id"] async for r in fhir.search("Goal", include=True)]
    assert plain == ["g1"]
    assert both == ["g1", "p1"]


async def test_search_holds_one_page_at_a_time() -> None:
    """The next page is fetched only when the consumer has taken every entry of this one."""
    server = Script(fhir_json(page(["g1", "g2"], f"{BASE}/Goal?page=2")), fhir_json(page(["g3"])))
    async with server.client() as fhir:
        results = fhir.search("Goal")
        assert (await anext(results))["id"] == "g1"
        assert (await anext(results))["id"] == "g2"
        assert len(server.requests) == 1
        assert (await anext(results))["id"] == "g3"
        assert len(server.requests) == 2
        await results.aclose()


async def test_search_bundles_yields_pages() -> None:
    """search_bundles gives each Bundle, links and totals included."""
    server = Script(fhir_json(page(["g1"], f"{BASE}/Goal?page=2")), fhir_json(page(["g2"])))
    async with server.client() as fhir:
        pages = [b async for b in fhir.search_bundles("Goal", [("status", "active")])]
    assert [len(p["entry"]) for p in pages] == [1, 1]
    assert str(server.requests[0].url) == f"{BASE}/Goal?status=active"


async def test_search_page_that_is_not_a_bundle_is_malformed() -> None:
    """A search answer must be a Bundle."""
    server = Script(fhir_json(PATIENT))
    async with server.client() as fhir:
        with pytest.raises(MalformedResponse, match="Bundle"):
            _ = [r async for r in fhir.search("Goal")]


async def test_history_with_since_yields_entries_including_deletions() -> None:
    """Type history with _since pages like search; a deleted entry comes with no resource."""
    history = {
        "resourceType": "Bundle",
        "type": "history",
        "entry": [
            {
                "resource": {"resourceType": "Goal", "id": "g1", "meta": {"versionId": "2"}},
                "request": {"method": "PUT", "url": "Goal/g1"},
            },
            {"request": {"method": "DELETE", "url": "Goal/g2"}, "response": {"status": "410"}},
        ],
    }
    server = Script(fhir_json(history))
    since = datetime(2025, 3, 1, tzinfo=UTC)
    async with server.client() as fhir:
        entries = [e async for e in fhir.history("Goal", since=since, count=50)]
    assert [e["request"]["method"] for e in entries] == ["PUT", "DELETE"]
    request = server.requests[0]
    assert request.url.path == "/fhir/Goal/_history"
    assert request.url.params["_since"] == "2025-03-01T00:00:00+00:00"
    assert request.url.params["_count"] == "50"


@pytest.mark.parametrize(
    ("args", "path"),
    [((), "/fhir/_history"), (("Goal", "g1"), "/fhir/Goal/g1/_history")],
)
async def test_system_and_instance_history(args: tuple[str, ...], path: str) -> None:
    """history() without a type is system history; with type and id, instance history."""
    server = Script(fhir_json({"resourceType": "Bundle", "type": "history"}))
    async with server.client() as fhir:
        _ = [e async for e in fhir.history(*args)]
    assert server.requests[0].url.path == path


# --- transaction and batch ------------------------------------------------------------------


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


# --- concurrency ----------------------------------------------------------------------------


async def test_max_in_flight_limits_concurrent_requests() -> None:
    """With max_in_flight=3, twenty concurrent reads never have more than 3 at the server."""
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        return fhir_json({**PATIENT, "id": request.url.path.rsplit("/", 1)[-1]})

    async with FhirClient(BASE, transport=httpx.MockTransport(handler), max_in_flight=3) as fhir:
        results = await asyncio.gather(*(fhir.read("Patient", f"p{i}") for i in range(20)))
    assert [r["id"] for r in results] == [f"p{i}" for i in range(20)]
    assert peak == 3


def test_client_needs_an_absolute_base_url() -> None:
    """A relative or non-http base URL is a programming error."""
    with pytest.raises(ValueError, match="absolute"):
        FhirClient("ehr.test/fhir")
