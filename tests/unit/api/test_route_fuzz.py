"""Every route of the app (API, dashboard, webhook, health) against a table of hostile path
values and bodies: whatever comes in, the answer is never a server error (the only 5xx allowed
is a gateway error about the EHR's server, which is closed here), and the service still works
afterwards. The real fuzz run (schemathesis, against HAPI) is
tests/integration/test_api_fuzz.py."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest

from fhir_bridge.config import ConnectionConfig, Settings
from tests.api_client import Api, api_keys

PATH_VALUES = [
    "x",
    "-1",
    "0",
    "9223372036854775808",
    "1e309",
    "%ED%A0%80",  # a surrogate, percent-encoded
    "%FF%FE",
    "a" * 300,
]
BODIES: list[tuple[bytes, str]] = [
    (b"", "application/json"),
    (b"\xff\xfe\x00{", "application/json"),
    ('{"name": "Müller"}'.encode("latin-1"), "application/json"),
    (b'{"x": NaN, "y": Infinity}', "application/json"),
    (b"[" * 900 + b"]" * 900, "application/json"),
    (b'{"description": {"text": "\\ud800"}, "id": "\\udfff"}', "application/json"),
    (b'{"a": ', "application/fhir+json"),
    (b'{"id": 99999999999999999999999999, "limit": -1}', "application/json"),
    (b"key=%ED%A0%80&csrf=\xff", "application/x-www-form-urlencoded"),
    (b"\x00" * 1000, "text/plain"),
]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Api, str]:
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    url = f"sqlite:///{tmp_path / 'fuzz.db'}"
    settings = Settings(
        database_url=url,
        max_body_bytes=256 * 1024,
        connections={
            "ehr": ConnectionConfig(
                base_url=f"http://127.0.0.1:{_closed_port()}/fhir",
                enrol="all",
                webhook_secret_env="HOOK_SECRET",
                timeout_seconds=2,
            )
        },
    )
    return Api(settings), api_keys(url)["admin"]


DASHBOARD = [
    ("GET", "/dashboard"),
    ("GET", "/dashboard/login"),
    ("POST", "/dashboard/login"),
    ("POST", "/dashboard/logout"),
    ("POST", "/dashboard/dead-letters/{entry_id}/retry"),
    ("POST", "/dashboard/dead-letters/retry-all"),
]


def _routes(api: Api) -> list[tuple[str, str]]:
    """Every route the OpenAPI document publishes, and the dashboard's (not published)."""
    spec = api.app.openapi()
    published = [(m.upper(), path) for path, ops in spec["paths"].items() for m in ops]
    return published + DASHBOARD


def _fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


def _acceptable(answer: Any) -> bool:
    if answer.status_code < 500:
        return True
    # the closed EHR server, or the database: a gateway answer naming it, never a 500
    return answer.status_code in (502, 503, 504) and "internal" not in answer.text


def test_no_route_answers_a_server_error_to_hostile_input(api: Any) -> None:
    call, key = api
    headers = {"X-Fhir-Bridge-Secret": "s3cret"}
    routes = _routes(call)
    assert len(routes) > 30
    sent = 0
    failures: list[str] = []
    for method, path in routes:
        for value in PATH_VALUES:
            answer = call(method, _fill(path, value), key=key, headers=headers)
            sent += 1
            if not _acceptable(answer):
                failures.append(f"{method} {path} [{value[:20]}] -> {answer.status_code}")
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            for body, content_type in BODIES:
                answer = call(
                    method,
                    _fill(path, "g1"),
                    key=key,
                    content=body,
                    headers=headers | {"Content-Type": content_type},
                )
                sent += 1
                if not _acceptable(answer):
                    failures.append(f"{method} {path} [{body[:20]!r}] -> {answer.status_code}")
    print(f"\n{sent} hostile requests over {len(routes)} routes, {len(failures)} server errors")
    assert failures == []
    assert call("GET", "/healthz").status_code == 200
    assert call("GET", "/v1/goals", key=key).status_code == 200
