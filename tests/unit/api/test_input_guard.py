"""What an outsider or a careless client sends cannot exhaust, crash or leak through the API:
bodies are limited before they are read, the key is checked before the body, unreadable JSON
is a 4xx naming the field, and a server error logs no body."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest.mock import patch

import httpx
import pytest

from fhir_bridge import logs
from fhir_bridge.api import create_app
from fhir_bridge.config import WEBHOOK_SECRET_HEADER, ConnectionConfig, Settings
from fhir_bridge.errors import StoreUnavailable
from fhir_bridge.store import Store
from fhir_bridge.store._api_keys import ApiKeys
from tests.api_client import Api, api_keys

PATIENT = {
    "updated_at": "2025-03-01T10:00:00Z",
    "names": [{"family": "Quixote-Lindqvist", "given": ["Esperanza"]}],
    "birth_date": "1941-07-19",
}
GOAL = {
    "updated_at": "2025-03-01T10:00:00Z",
    "patient": "pat-1",
    "description": {"text": "Walk 20 minutes a day"},
    "lifecycle_status": "active",
}


@pytest.fixture
def api(tmp_path: Path) -> tuple[Api, dict[str, str]]:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    settings = Settings(
        database_url=url,
        max_body_bytes=64 * 1024,
        connections={"ehr": ConnectionConfig(base_url="http://ehr.test/fhir", enrol="all")},
    )
    return Api(settings), api_keys(url)


def _stream(chunks: list[bytes], read: list[int]) -> AsyncIterator[bytes]:
    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            read.append(len(chunk))
            yield chunk

    return body()


def test_a_declared_length_over_the_limit_is_413_before_reading(api: Any) -> None:
    call, keys = api
    read: list[int] = []
    answer = call(
        "PUT",
        "/v1/goals/g1",
        key=keys["write"],
        content=_stream([b"x" * 1024] * 100, read),
        headers={"Content-Length": str(100 * 1024), "Content-Type": "application/json"},
    )
    assert answer.status_code == 413
    assert "max_body_bytes" in answer.json()["detail"]
    assert read == []  # not one byte was taken in


def test_a_chunked_body_is_counted_as_it_streams_in(api: Any) -> None:
    call, keys = api
    read: list[int] = []
    answer = call(
        "PUT",
        "/v1/goals/g1",
        key=keys["write"],
        content=_stream([b" " * 16 * 1024] * 10, read),  # no Content-Length: chunked
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 413
    assert answer.json()["limit"] == 64 * 1024
    assert sum(read) <= 64 * 1024 + 16 * 1024  # reading stopped at the limit
    assert call("GET", "/v1/goals/g1", key=keys["read"]).status_code == 404


def test_the_limit_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FHIR_BRIDGE_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("FHIR_BRIDGE_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    assert Settings().max_body_bytes == 2048
    assert Settings.model_fields["max_body_bytes"].default == 5 * 1024 * 1024


@pytest.mark.parametrize("key", [None, "fbk_not-a-key"])
def test_without_a_known_key_the_body_is_never_read(api: Any, key: str | None) -> None:
    call, _ = api
    read: list[int] = []
    answer = call(
        "PUT",
        "/v1/goals/g1",
        key=key,
        content=_stream([json.dumps(GOAL).encode()], read),
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert read == []


def test_a_known_key_without_the_scope_is_still_403(api: Any) -> None:
    call, keys = api
    assert call("PUT", "/v1/goals/g1", key=keys["read"], json=GOAL).status_code == 403


def test_a_write_looks_its_key_up_once(api: Any) -> None:
    """The guard's lookup is the one the route's scope check uses (no second query)."""
    call, keys = api
    with patch.object(ApiKeys, "check", autospec=True, side_effect=ApiKeys.check) as check:
        answer = call("PUT", "/v1/patients/pat-1", key=keys["write"], json=PATIENT)
        assert answer.status_code == 201, answer.text
        assert check.call_count == 1
        assert call("GET", "/v1/patients/pat-1", key=keys["read"]).status_code == 200
        assert check.call_count == 2  # a read has no body: the route looks the key up


def _put_raw(call: Api, key: str, body: bytes, content_type: str) -> httpx.Response:
    return call(
        "PUT", "/v1/patients/pat-1", key=key, content=body, headers={"Content-Type": content_type}
    )


def test_a_latin1_body_without_charset_is_422_and_not_logged(
    api: Any, caplog: pytest.LogCaptureFixture
) -> None:
    call, keys = api
    caplog.set_level(logging.DEBUG)
    body = json.dumps(PATIENT | {"names": [{"family": "Müller-Quixote"}]}, ensure_ascii=False)
    answer = _put_raw(call, keys["write"], body.encode("latin-1"), "application/json")
    assert answer.status_code == 422
    assert "not UTF-8" in answer.json()["detail"]
    assert "Quixote" not in caplog.text
    assert "1941" not in caplog.text


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_422(api: Any, constant: str) -> None:
    call, keys = api
    body = json.dumps(GOAL | {"x": 0}).replace("0}", f"{constant}}}").encode()
    answer = _put_raw(call, keys["write"], body, "application/json")
    assert answer.status_code == 422
    assert f"{constant.lstrip('-')} is not a JSON number" in answer.json()["detail"]


@pytest.mark.parametrize("depth", [65, 900, 20_000])
def test_deep_nesting_is_422(api: Any, depth: int) -> None:
    call, keys = api
    body = ("[" * depth + "]" * depth).encode()
    answer = call("POST", "/v1/map", key=keys["read"], content=body)
    assert answer.status_code == 422
    assert "nested deeper than 64 levels" in json.dumps(answer.json())


def test_deep_fhir_extras_are_422_naming_the_field(api: Any) -> None:
    call, keys = api
    nested: Any = {"url": "x"}
    for _ in range(300):  # 600 levels
        nested = {"extension": [nested]}
    answer = call(
        "PUT",
        "/v1/goals/g1",
        key=keys["write"],
        content=json.dumps(GOAL | {"fhir_extras": {"Goal": nested}}).encode(),
        headers={"Content-Type": "application/fhir+json"},
    )
    assert answer.status_code == 422
    (problem,) = answer.json()["problems"]
    assert problem["path"].startswith("body.fhir_extras.Goal.extension[0]")


def test_a_lone_surrogate_is_422_naming_the_field_and_never_stored(api: Any) -> None:
    call, keys = api
    assert call("PUT", "/v1/patients/pat-1", key=keys["write"], json=PATIENT).status_code == 201
    goal = GOAL | {"description": {"text": "Walk \ud800"}}
    answer = call("PUT", "/v1/goals/g1", key=keys["write"], content=json.dumps(goal).encode())
    assert answer.status_code == 422
    assert answer.json()["problems"] == [
        {"path": "body.description.text", "reason": "holds a lone surrogate (not Unicode text)"}
    ]
    listed = call("GET", "/v1/goals", key=keys["read"])
    assert listed.status_code == 200
    assert listed.json()["items"] == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/dead-letters/9223372036854775808"),
        ("POST", "/v1/dead-letters/9223372036854775808/retry"),
        ("GET", "/v1/conflicts/99999999999999999999999"),
        ("POST", "/dashboard/dead-letters/9223372036854775808/retry"),
        ("GET", "/v1/goals?offset=9223372036854775808"),
    ],
)
def test_ids_past_the_database_range_are_4xx(api: Any, method: str, path: str) -> None:
    call, keys = api
    answer = call(method, path, key=keys["admin"])
    assert 400 <= answer.status_code < 500, answer.text


def test_a_locked_database_is_503_with_retry_after(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    call, keys = api
    store = call.app.state.store

    def locked(*_: Any, **__: Any) -> Any:
        raise StoreUnavailable(sqlite3.OperationalError.__name__)

    monkeypatch.setattr(store, "put_record_if", locked)
    answer = call("PUT", "/v1/patients/pat-1", key=keys["write"], json=PATIENT)
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert answer.json()["error"] == "OperationalError"


def test_a_really_locked_sqlite_file_is_503_and_nothing_half_written(
    api: Any, tmp_path: Path
) -> None:
    call, keys = api
    assert call("GET", "/v1/goals", key=keys["read"]).status_code == 200
    holder = sqlite3.connect(tmp_path / "api.db", timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        answer = call("PUT", "/v1/patients/pat-1", key=keys["write"], json=PATIENT)
    finally:
        holder.rollback()
        holder.close()
    assert answer.status_code == 503
    assert "Retry-After" in answer.headers
    assert call("GET", "/v1/patients/pat-1", key=keys["read"]).status_code == 404


def test_a_server_error_logs_ids_never_the_body(
    api: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    call, keys = api
    store = call.app.state.store

    def broken(record: Any, *_: Any, **__: Any) -> Any:
        raise RuntimeError(f"cannot store {record.model_dump_json()}")  # quotes the record

    monkeypatch.setattr(store, "put_record_if", broken)
    caplog.set_level(logging.DEBUG)
    answer = call("PUT", "/v1/patients/pat-1", key=keys["write"], json=PATIENT)
    assert answer.status_code == 500
    assert answer.json() == {"detail": "internal error", "error": "internal"}
    assert "Quixote" not in caplog.text
    assert "1941" not in caplog.text
    (failure,) = [r for r in caplog.records if r.getMessage() == "request failed"]
    assert failure.__dict__["error"] == "RuntimeError"
    assert failure.__dict__["route"] == "/v1/{collection}/{record_id}"
    assert failure.exc_info is None  # no traceback: its message would quote the body


def test_a_json_body_within_limits_still_works(api: Any) -> None:
    call, keys = api
    answer = call("PUT", "/v1/patients/pat-1", key=keys["write"], json=PATIENT)
    assert answer.status_code == 201, answer.text
    assert call("GET", "/v1/patients/pat-1", key=keys["read"]).json()["birth_date"] == "1941-07-19"


def test_a_client_going_away_mid_body_is_no_server_error(api: Any) -> None:
    call, keys = api
    messages = iter(
        [
            {"type": "http.request", "body": b'{"a":', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/map",
        "raw_path": b"/v1/map",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bridge.test"),
            (b"authorization", f"Bearer {keys['read']}".encode()),
            (b"content-type", b"application/json"),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("bridge.test", 80),
    }
    asyncio.run(call.app(scope, receive, send))
    statuses = [m["status"] for m in sent if m["type"] == "http.response.start"]
    assert all(s < 500 for s in statuses), statuses


def test_a_failed_notification_logs_no_resource_content(tmp_path: Path) -> None:
    """A notification's pull that fails with an error quoting a resource: the log line names
    the error's type and where it was raised, never its message."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'hook.db'}",
        notification_window_seconds=0,
        connections={"ehr": ConnectionConfig(base_url="http://ehr.test/fhir", enrol="all")},
    )
    store = Store(settings.database_url)
    secret_id, secret = store.subscription_secrets.issue(
        "ehr", "Goal", "http://bridge.test/fhir/notify/ehr/Goal", datetime.now(UTC)
    )
    store.subscription_secrets.attach(secret_id, "sub-goal")
    store.close()
    stream = io.StringIO()
    logs.configure("DEBUG", "keyvalue", stream=stream)

    async def broken(*_: Any, **__: Any) -> Any:
        raise ValueError("cannot apply Goal 'Quixote-Lindqvist'")  # quotes a resource

    async def run() -> None:
        app = create_app(settings)
        with patch("fhir_bridge.api._app.pull_connection", broken):
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bridge.test"
            ) as bridge:
                answer = await bridge.post(
                    "/fhir/notify/ehr/Goal", headers={WEBHOOK_SECRET_HEADER: secret}
                )
                assert answer.status_code == 202
                await app.state.notifications.drain()

    try:
        asyncio.run(run())
    finally:
        logs.configure("WARNING", "keyvalue")
    text = stream.getvalue()
    assert "notification pull failed" in text
    assert "exc_type=ValueError" in text
    assert "Quixote" not in text
