"""The dashboard through the real app (in process) on a real SQLite store: sign-in, scopes,
what the page shows, retry buttons. The configured server is a closed loopback port, so the
page must show it as unreachable rather than fail."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fhir_bridge import model as m
from fhir_bridge.api import create_app
from fhir_bridge.api._dashboard_sessions import SignInLimit
from fhir_bridge.config import ConnectionConfig, Settings
from fhir_bridge.documents import read_records
from fhir_bridge.handoff import check, package_of
from fhir_bridge.store import NewConflict, OutboxStatus, PatientMatch, Store
from tests.helpers import FIXTURES

NOW = datetime.now(UTC) - timedelta(minutes=3)


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Browser:
    """Requests through the app in process, keeping cookies from one request to the next."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.cookies = httpx.Cookies()
        self.csrf = ""  # the session's form token, as the page's forms carry it

    def read_csrf(self) -> None:
        found = re.search(r'name="csrf" value="([^"]+)"', self.get("/dashboard").text)
        assert found is not None
        self.csrf = found.group(1)

    def request(
        self, method: str, url: str, *, follow_redirects: bool = True, **kwargs: Any
    ) -> httpx.Response:
        async def run() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self.app),
                base_url="http://bridge.test",
                cookies=self.cookies,
                follow_redirects=follow_redirects,
            ) as client:
                response = await client.request(method, url, **kwargs)
                self.cookies = client.cookies
                return response

        return asyncio.run(run())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        """A form post as the page's own forms send it (with the session's CSRF token)."""
        if url != "/dashboard/login" and "data" not in kwargs and "content" not in kwargs:
            kwargs["data"] = {"csrf": self.csrf}
        return self.request("POST", url, **kwargs)


@dataclass
class Bridge:
    client: Browser
    store: Store
    keys: dict[str, str]
    dead_id: int

    def sign_in(self, scope: str) -> None:
        answer = self.client.post(
            "/dashboard/login", data={"key": self.keys[scope]}, follow_redirects=False
        )
        assert answer.status_code == 303, answer.text
        self.client.read_csrf()


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[Bridge]:
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    closed = f"http://127.0.0.1:{_closed_port()}/fhir"
    settings = Settings(
        database_url=url,
        connections={"county-hospital": ConnectionConfig(base_url=closed, enrol="all")},
    )
    store = Store(url)
    records = read_records(FIXTURES / "incomplete" / "no-problems-no-meds-no-followup.json")
    store.put_records(records, ["county-hospital"], NOW)
    # a push run that dead-lettered one record and left the rest queued
    run = store.runs.start("county-hospital", "push", NOW)
    (first, *_) = store.outbox.due("county-hospital", NOW)
    store.outbox.mark_failed(first, "HTTP 422 on POST (base): processing, HAPI-1094", None, NOW)
    store.log.add(run, NOW, "Goal", "goal/x", "failed", detail="HTTP 422: processing")
    store.runs.finish(
        run, "partial", {"created": 4, "dead_lettered": 1}, NOW + timedelta(seconds=2)
    )
    goal = next(r for r in records if isinstance(r, m.Goal))
    local = goal.model_dump(mode="json") | {"priority": "low"}
    store.apply_pull(
        "county-hospital",
        "Goal",
        records=[],
        links=[],
        conflicts=[
            NewConflict(
                "goal", goal.id, ["priority"], {"priority": "high"}, local, {"priority": "medium"}
            )
        ],
        watermark=None,
        now=NOW,
    )
    findings = check(package_of(records))
    store.handoffs.add(
        package_id="pkg-1",
        patient_id="pat-doyle",
        handoff_type="transfer",
        author="Care manager",
        destination=None,
        findings=[{"code": f.code, "severity": f.severity, "record": f.record} for f in findings],
        delivery=None,
        now=NOW,
    )
    scopes = {"read": ["read"], "write": ["read", "write"], "admin": ["admin"], "push": ["write"]}
    keys = {name: store.api_keys.create(name, s, NOW) for name, s in scopes.items()}
    yield Bridge(Browser(create_app(settings)), store, keys, first.id)
    store.close()


def test_without_a_session_every_page_sends_you_to_sign_in(bridge: Bridge) -> None:
    """/dashboard and its buttons redirect to the login form; nothing is requeued."""
    for method, path in (
        ("GET", "/dashboard"),
        ("POST", f"/dashboard/dead-letters/{bridge.dead_id}/retry"),
        ("POST", "/dashboard/dead-letters/retry-all"),
    ):
        answer = bridge.client.request(method, path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == "/dashboard/login"
    assert [d.id for d in bridge.store.outbox.dead_letters()] == [bridge.dead_id]
    form = bridge.client.get("/dashboard/login")
    assert form.status_code == 200
    assert 'name="key"' in form.text


def test_a_wrong_or_empty_key_gets_the_login_page_with_a_message(bridge: Bridge) -> None:
    wrong = bridge.client.post("/dashboard/login", data={"key": "fbk_not-a-key"})
    assert wrong.status_code == 401
    assert "That API key is unknown, revoked or expired." in wrong.text
    assert 'name="key"' in wrong.text
    assert "set-cookie" not in wrong.headers
    empty = bridge.client.post("/dashboard/login", data={})
    assert empty.status_code == 400
    assert "Enter an API key." in empty.text
    write_only = bridge.client.post("/dashboard/login", data={"key": bridge.keys["push"]})
    assert write_only.status_code == 403
    assert "lacks the &#39;read&#39; scope" in write_only.text
    assert bridge.client.get("/dashboard", follow_redirects=False).status_code == 303


def test_the_session_cookie_is_http_only_and_same_site_strict(bridge: Bridge) -> None:
    answer = bridge.client.post(
        "/dashboard/login", data={"key": bridge.keys["read"]}, follow_redirects=False
    )
    assert answer.headers["location"] == "/dashboard"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/dashboard" in cookie
    assert bridge.keys["read"] not in cookie  # the browser holds a session token, not the key


def test_the_page_shows_connections_queue_dead_letters_conflicts_and_handoffs(
    bridge: Bridge,
) -> None:
    bridge.sign_in("read")
    page = bridge.client.get("/dashboard")
    assert page.status_code == 200
    html = page.text
    assert "county-hospital" in html
    assert "unreachable: the connection was refused or failed" in html
    pending = bridge.store.outbox.depth("county-hospital").pending
    assert f'<dd class="queue-pending">{pending}</dd>' in html
    assert f'id="dead-letter-{bridge.dead_id}"' in html
    assert "HAPI-1094" in html
    assert "goal-doyle" in html  # the conflict's record
    assert "&#34;medium&#34;" in html or "medium" in html
    assert "no-medication-list" in html  # a handoff finding
    assert "created 4 · dead lettered 1" in html  # the run's counts
    assert "<svg" in html
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_the_page_lists_the_types_a_server_does_not_take_and_why(bridge: Bridge) -> None:
    store = bridge.store
    waiting = [e for e in store.outbox.due("county-hospital", NOW) if e.kind == "careplan"]
    for entry in waiting:
        store.outbox.mark_blocked(entry, "CarePlan", "CarePlan is read-only", NOW)
    store.refusals.remember_declared("county-hospital", ["CarePlan:write"], "s", NOW)
    store.refusals.remember(
        "county-hospital", "transaction", source="run-time", statement="s", now=NOW, status=405
    )
    bridge.sign_in("read")
    html = bridge.client.get("/dashboard").text
    assert f'<dd class="queue-blocked">{len(waiting)}</dd>' in html
    assert (
        f"<strong>CarePlan</strong> not sent ({len(waiting)} waiting): CarePlan is read-only "
        "on this server" in html
    )
    assert "transaction Bundles refused by the server with HTTP 405 on " in html


def test_a_read_only_key_sees_no_retry_button_and_cannot_retry(bridge: Bridge) -> None:
    bridge.sign_in("read")
    assert "/retry" not in bridge.client.get("/dashboard").text
    refused = bridge.client.post(f"/dashboard/dead-letters/{bridge.dead_id}/retry")
    assert refused.status_code == 403
    assert "needs the" in refused.text
    assert "write" in refused.text
    assert bridge.client.post("/dashboard/dead-letters/retry-all").status_code == 403
    assert [d.id for d in bridge.store.outbox.dead_letters()] == [bridge.dead_id]


@pytest.mark.parametrize("scope", ["write", "admin"])
def test_a_write_or_admin_key_requeues_a_dead_letter(bridge: Bridge, scope: str) -> None:
    bridge.sign_in(scope)
    assert f"/dashboard/dead-letters/{bridge.dead_id}/retry" in bridge.client.get("/dashboard").text
    pressed = bridge.client.post(
        f"/dashboard/dead-letters/{bridge.dead_id}/retry", follow_redirects=False
    )
    assert pressed.status_code == 303
    assert pressed.headers["location"] == "/dashboard?requeued=1#dead-letters"
    assert bridge.store.outbox.dead_letters() == []
    entry = next(
        e
        for e in bridge.store.outbox.due("county-hospital", datetime.now(UTC))
        if e.id == bridge.dead_id
    )
    assert (entry.status, entry.attempts) == (OutboxStatus.pending, 0)
    page = bridge.client.get("/dashboard?requeued=1")
    assert "1 dead letter is queued again" in page.text
    again = bridge.client.post(f"/dashboard/dead-letters/{bridge.dead_id}/retry")
    assert "no longer a dead letter" in again.text


def test_retry_all_requeues_every_dead_letter(bridge: Bridge) -> None:
    bridge.sign_in("write")
    pressed = bridge.client.post("/dashboard/dead-letters/retry-all")
    assert pressed.status_code == 200
    assert "1 dead letter is queued again" in pressed.text
    assert bridge.store.outbox.dead_letters() == []


def test_sign_out_ends_the_session(bridge: Bridge) -> None:
    bridge.sign_in("read")
    cookie = bridge.client.cookies.get("fhir_bridge_dashboard")
    out = bridge.client.post("/dashboard/logout", follow_redirects=False)
    assert out.status_code == 303
    assert out.headers["location"] == "/dashboard/login?signed_out"
    assert "You are signed out." in bridge.client.get(out.headers["location"]).text
    bridge.client.cookies.set("fhir_bridge_dashboard", cookie or "", path="/dashboard")
    assert bridge.client.get("/dashboard", follow_redirects=False).status_code == 303


def test_the_dashboard_is_not_part_of_the_api_schema(bridge: Bridge) -> None:
    paths = bridge.client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/dashboard")]


def test_revoking_a_key_ends_its_sessions_at_once(bridge: Bridge) -> None:
    bridge.sign_in("write")
    assert bridge.client.get("/dashboard", follow_redirects=False).status_code == 200
    assert bridge.store.api_keys.revoke("write") == 1
    assert bridge.client.get("/dashboard", follow_redirects=False).status_code == 303
    refused = bridge.client.post(
        f"/dashboard/dead-letters/{bridge.dead_id}/retry", follow_redirects=False
    )
    assert refused.status_code == 303
    assert [d.id for d in bridge.store.outbox.dead_letters()] == [bridge.dead_id]


def test_no_connections_and_an_empty_store_still_make_a_page(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    store = Store(url)
    key = store.api_keys.create("viewer", ["read"], NOW)
    store.close()
    browser = Browser(create_app(Settings(database_url=url)))
    browser.post("/dashboard/login", data={"key": key})
    page = browser.get("/dashboard")
    assert page.status_code == 200
    for empty in (
        "No connections are configured",
        "No sync run yet.",
        "No dead letters.",
        "No open conflicts.",
        "No handoff built yet.",
        "No sync run wrote anything in this window.",
    ):
        assert empty in page.text


def test_held_patients_show_with_why_and_the_mode_in_force(bridge: Bridge) -> None:
    bridge.store.matches.save(
        PatientMatch(
            "county-hospital",
            "pat-doyle",
            "held",
            None,
            "demographics",
            "ambiguous: demographics found 2 patients",
            2,
            None,
            NOW,
            "push:test",
        )
    )
    bridge.sign_in("read")
    html = bridge.client.get("/dashboard").text
    assert 'id="held-county-hospital-pat-doyle"' in html
    assert "ambiguous: demographics found 2 patients" in html
    held = bridge.store.outbox.depth("county-hospital").held
    assert held > 0
    assert f'<dd class="queue-held">{held}</dd>' in html
    assert '<strong class="patient-mode">create</strong>' in html  # a server on this machine
    assert '<span class="patients-held">1</span>' in html


def test_each_connection_says_whose_records_it_takes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'routes.db'}"
    closed = f"http://127.0.0.1:{_closed_port()}/fhir"
    store = Store(url)
    key = store.api_keys.create("viewer", ["read"], NOW)
    store.enrolments.enrol("pat-1", "county-hospital", None, NOW)
    store.enrolments.enrol("pat-2", "county-hospital", "M-2", NOW)
    store.close()
    settings = Settings(
        database_url=url,
        connections={
            "county-hospital": ConnectionConfig(base_url=closed),
            "registry": ConnectionConfig(base_url=closed, enrol="all"),
        },
    )
    browser = Browser(create_app(settings))
    browser.post("/dashboard/login", data={"key": key})
    html = browser.get("/dashboard").text
    hospital = html.split('id="connection-county-hospital"', 1)[1].split("</article>", 1)[0]
    registry = html.split('id="connection-registry"', 1)[1].split("</article>", 1)[0]
    assert '<span class="enrolled">2</span> patients enrolled' in hospital
    assert "every patient&#39;s records" in registry or "every patient's records" in registry


def test_a_form_post_without_the_session_token_changes_nothing(bridge: Bridge) -> None:
    bridge.sign_in("write")
    for data in ({}, {"csrf": "forged"}):
        refused = bridge.client.post(
            f"/dashboard/dead-letters/{bridge.dead_id}/retry", data=data, follow_redirects=False
        )
        assert refused.status_code == 403
        assert "not sent from this dashboard" in refused.text
        assert bridge.client.post("/dashboard/dead-letters/retry-all", data=data).status_code == 403
        assert bridge.client.post("/dashboard/logout", data=data).status_code == 403
    assert [d.id for d in bridge.store.outbox.dead_letters()] == [bridge.dead_id]
    assert bridge.client.get("/dashboard", follow_redirects=False).status_code == 200  # still in


def test_another_session_token_is_no_good_either(bridge: Bridge) -> None:
    bridge.sign_in("write")
    mine = bridge.client.csrf
    bridge.sign_in("admin")  # a new session, a new token
    assert bridge.client.csrf != mine
    old = bridge.client.post("/dashboard/dead-letters/retry-all", data={"csrf": mine})
    assert old.status_code == 403


@pytest.mark.parametrize(
    "headers", [{"Origin": "https://evil.example"}, {"Referer": "https://evil.example/x"}]
)
def test_a_form_sent_from_another_site_is_refused(bridge: Bridge, headers: dict[str, str]) -> None:
    bridge.sign_in("write")
    refused = bridge.client.post(
        "/dashboard/dead-letters/retry-all", data={"csrf": bridge.client.csrf}, headers=headers
    )
    assert refused.status_code == 403
    assert bridge.store.outbox.dead_letters() != []
    login = bridge.client.post(
        "/dashboard/login", data={"key": bridge.keys["read"]}, headers=headers
    )
    assert login.status_code == 403
    same = {"Origin": "http://bridge.test", "Referer": "http://bridge.test/dashboard"}
    pressed = bridge.client.post(
        "/dashboard/dead-letters/retry-all", data={"csrf": bridge.client.csrf}, headers=same
    )
    assert pressed.status_code == 200
    assert bridge.store.outbox.dead_letters() == []


def test_five_failed_sign_ins_a_minute_then_429_with_retry_after(bridge: Bridge) -> None:
    for _ in range(5):
        assert bridge.client.post("/dashboard/login", data={"key": "fbk_guess"}).status_code == 401
    limited = bridge.client.post("/dashboard/login", data={"key": bridge.keys["read"]})
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "Too many failed sign-ins" in limited.text
    assert "set-cookie" not in limited.headers  # even the right key waits


def test_the_sign_in_limit_forgets_after_the_window() -> None:
    now = [0.0]
    limit = SignInLimit(failures=2, window=60.0, clock=lambda: now[0])
    limit.failed("10.0.0.1")
    limit.failed("10.0.0.1")
    assert limit.wait("10.0.0.1") == 60
    assert limit.wait("10.0.0.2") is None  # per address
    now[0] = 30.0
    assert limit.wait("10.0.0.1") == 30
    now[0] = 60.5
    assert limit.wait("10.0.0.1") is None
