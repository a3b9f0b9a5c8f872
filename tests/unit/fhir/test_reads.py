"""Reads: read and vread, ids checked before sending, paging, history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from fhir_bridge.errors import MalformedResponse
from tests.unit.fhir.fakes import BASE, PATIENT, Script, fhir_json

pytestmark = pytest.mark.anyio


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


# --- read and vread -----------------------------------------------------------------------


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
