"""Bulk Data export: kick-off, polling as the server asks, NDJSON read line by line, cleanup."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from fhir_bridge.errors import BulkExportFailed, FhirStatusError, MalformedResponse
from fhir_bridge.fhir import ExportFile, FhirClient
from tests.unit.fhir.fakes import BASE, FakeTime, outcome, policy

pytestmark = pytest.mark.anyio

STATUS = f"{BASE}/$export-poll-status?_jobId=j1"


def manifest(**extra: Any) -> httpx.Response:
    body = {
        "transactionTime": "2026-12-02T05:00:00Z",
        "request": f"{BASE}/Patient/$export",
        "requiresAccessToken": True,
        "output": [
            {"type": "Goal", "url": f"{BASE}/Binary/goals", "count": 2},
            {"type": "CarePlan", "url": f"{BASE}/Binary/plans"},
        ],
        "error": [],
        **extra,
    }
    return httpx.Response(200, json=body)


def client(fake: FakeTime, attempts: int = 1) -> FhirClient:
    return FhirClient(BASE, retry=policy(fake, max_attempts=attempts))


@respx.mock
async def test_kick_off_by_get_asks_for_ndjson_async_and_gives_the_status_url() -> None:
    route = respx.get(f"{BASE}/Patient/$export").mock(
        return_value=httpx.Response(202, headers={"Content-Location": STATUS})
    )
    async with client(FakeTime()) as fhir:
        url = await fhir.export_start("Patient", types=["Goal", "CarePlan"], since="2026-01-01")
    assert url == STATUS
    request = route.calls.last.request
    assert request.headers["Prefer"] == "respond-async"
    assert request.url.params["_outputFormat"] == "application/fhir+ndjson"
    assert request.url.params["_type"] == "Goal,CarePlan"
    assert request.url.params["_since"] == "2026-01-01"


@respx.mock
async def test_kick_off_for_chosen_patients_posts_parameters_and_is_never_repeated() -> None:
    route = respx.post(f"{BASE}/Patient/$export").mock(
        side_effect=[httpx.Response(503), httpx.Response(202, headers={"Content-Location": STATUS})]
    )
    async with client(FakeTime(), attempts=3) as fhir:
        with pytest.raises(FhirStatusError) as failed:
            await fhir.export_start("Patient", types=["Goal"], patients=["Patient/1"])
        assert failed.value.status == 503
        assert route.call_count == 1  # a kick-off starts a job: not resent blindly
        assert await fhir.export_start("Patient", patients=["Patient/1", "Patient/2"]) == STATUS
    body = json.loads(route.calls.last.request.content)
    assert body["resourceType"] == "Parameters"
    assert [
        p["valueReference"]["reference"] for p in body["parameter"] if p["name"] == "patient"
    ] == [
        "Patient/1",
        "Patient/2",
    ]


@respx.mock
async def test_kick_off_answered_synchronously_is_refused() -> None:
    respx.get(f"{BASE}/$export").mock(return_value=httpx.Response(200, json={"x": 1}))
    async with client(FakeTime()) as fhir:
        with pytest.raises(MalformedResponse, match="asynchronously"):
            await fhir.export_start("system")
        with pytest.raises(ValueError, match="level"):
            await fhir.export_start("Observation")


@respx.mock
async def test_polling_honours_retry_after_up_to_the_longest_pause_then_reads_the_manifest() -> (
    None
):
    fake = FakeTime()
    respx.get(STATUS).mock(
        side_effect=[
            httpx.Response(202, headers={"Retry-After": "3"}),
            httpx.Response(202, headers={"Retry-After": "120"}),
            httpx.Response(202),  # no Retry-After: our own pause, doubling
            httpx.Response(202),
            manifest(),
        ]
    )
    async with client(fake) as fhir:
        result = await fhir.export_wait(
            STATUS, first_pause=1, longest_pause=10, sleep=fake.sleep, clock=fake.clock
        )
    assert fake.sleeps == [3, 10, 1, 2]
    assert result.transaction_time == "2026-12-02T05:00:00Z"
    assert [(f.type, f.count) for f in result.output] == [("Goal", 2), ("CarePlan", None)]
    assert result.requires_access_token


@respx.mock
async def test_polling_backs_off_on_429_and_5xx_and_fails_on_an_error_answer() -> None:
    fake = FakeTime()
    respx.get(STATUS).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(503),
            httpx.Response(500, json=outcome("exception", "job failed")),
            httpx.Response(400, json=outcome("processing", "bad _type")),
        ]
    )
    async with client(fake) as fhir:
        with pytest.raises(BulkExportFailed) as failed:
            await fhir.export_wait(STATUS, sleep=fake.sleep, clock=fake.clock, first_pause=2)
    assert failed.value.status == 400
    assert failed.value.permanent
    assert failed.value.polls == 4
    assert fake.sleeps == [7, 2, 4]  # as said, then our own pause, doubling


@respx.mock
async def test_polling_gives_up_after_the_timeout() -> None:
    fake = FakeTime()
    respx.get(STATUS).mock(return_value=httpx.Response(202, headers={"Retry-After": "30"}))
    async with client(fake) as fhir:
        with pytest.raises(BulkExportFailed, match="in time") as failed:
            await fhir.export_wait(STATUS, timeout=100, sleep=fake.sleep, clock=fake.clock)
    assert failed.value.polls == 4
    assert fake.sleeps == [30, 30, 30]


@respx.mock
async def test_files_are_read_line_by_line_and_bad_lines_are_named() -> None:
    lines = [json.dumps({"resourceType": "Goal", "id": str(i)}) for i in range(3)]
    respx.get(f"{BASE}/Binary/goals").mock(
        return_value=httpx.Response(200, content=("\n".join(lines) + "\n\n").encode())
    )
    respx.get(f"{BASE}/Binary/bad").mock(
        return_value=httpx.Response(200, content=(lines[0] + "\n{oops\n").encode())
    )
    respx.get(f"{BASE}/Binary/wrong").mock(
        return_value=httpx.Response(200, content=b'{"resourceType": "CarePlan", "id": "x"}\n')
    )
    async with client(FakeTime()) as fhir:
        got = [r["id"] async for r in fhir.export_lines(ExportFile("Goal", f"{BASE}/Binary/goals"))]
        assert got == ["0", "1", "2"]
        with pytest.raises(MalformedResponse, match="Binary/bad line 2: not JSON"):
            _ = [r async for r in fhir.export_lines(ExportFile("Goal", f"{BASE}/Binary/bad"))]
        with pytest.raises(MalformedResponse, match="line 1: a CarePlan in the Goal file"):
            _ = [r async for r in fhir.export_lines(ExportFile("Goal", f"{BASE}/Binary/wrong"))]


@respx.mock
async def test_files_elsewhere_get_no_credentials_and_need_none() -> None:
    elsewhere = "https://bucket.test/export/goals.ndjson"
    route = respx.get(elsewhere).mock(
        return_value=httpx.Response(200, content=b'{"resourceType": "Goal", "id": "1"}\n')
    )
    fhir = FhirClient(BASE, headers={"Authorization": "Bearer secret"})
    async with fhir:
        with pytest.raises(MalformedResponse, match="another server"):
            _ = [r async for r in fhir.export_lines(ExportFile("Goal", elsewhere))]
        assert not route.called
        file = ExportFile("Goal", elsewhere)
        got = [r async for r in fhir.export_lines(file, requires_access_token=False)]
    assert [r["id"] for r in got] == ["1"]
    assert "Authorization" not in route.calls.last.request.headers


@respx.mock
async def test_a_file_that_cannot_be_read_fails_the_export() -> None:
    respx.get(f"{BASE}/Binary/gone").mock(return_value=httpx.Response(404))
    async with client(FakeTime()) as fhir:
        with pytest.raises(BulkExportFailed, match="Binary/gone") as failed:
            _ = [r async for r in fhir.export_lines(ExportFile("Goal", f"{BASE}/Binary/gone"))]
    assert failed.value.status == 404


@respx.mock
async def test_the_job_is_deleted_and_a_job_already_gone_is_fine() -> None:
    route = respx.delete(STATUS).mock(
        side_effect=[httpx.Response(202), httpx.Response(404), httpx.Response(400)]
    )
    async with client(FakeTime()) as fhir:
        await fhir.export_delete(STATUS)
        await fhir.export_delete(STATUS)
        await fhir.export_delete(STATUS)  # refused: logged, the files expire on their own
    assert route.call_count == 3
