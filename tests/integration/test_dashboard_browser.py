"""The dashboard in a real headless Chromium, served by uvicorn over a real store whose data
came from real sync runs against the HAPI sandbox: a push with a record the server refuses
(a dead letter), a pull that finds a field changed on both sides (a conflict), a handoff.

Screenshots go to ``$FHIR_BRIDGE_TEST_OUTPUT`` (default ``test-output/``).
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from fhir_bridge import model as m
from fhir_bridge.api import create_app
from fhir_bridge.config import ConnectionConfig, Settings
from fhir_bridge.documents import read_records
from fhir_bridge.fhir import FhirClient
from fhir_bridge.handoff import check, package_of
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import OutboxStatus, Store
from fhir_bridge.sync import Puller, Pusher, PushSummary
from fhir_bridge.sync._transitions import Discharge, transitional_plan, windows
from tests.helpers import FIXTURES, fixture_files

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PRIORITY = "http://terminology.hl7.org/CodeSystem/goal-priority"
pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium; "
    ".ci/run installs it)",
)


@dataclass
class Served:
    url: str
    store: Store
    keys: dict[str, str]
    dead_id: int
    conflict_id: int
    handoff_id: int


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _find(fhir: httpx.Client, resource_type: str, system: str, value: str) -> dict[str, Any]:
    bundle = fhir.get(
        f"/{resource_type}",
        params={"identifier": f"{system}|{value}"},
        headers={"Cache-Control": "no-cache"},
    ).json()
    (entry,) = bundle["entry"]
    return dict(entry["resource"])


def _fill_store(store: Store, url: str, ctx: MappingContext, fhir: httpx.Client) -> None:
    now = datetime.now(UTC)
    records = [r for p in fixture_files() for r in read_records(p)]
    store.put_records(records, ["county-hospital", "closed-clinic"], now)

    async def push() -> PushSummary:
        async with FhirClient(url) as client:
            return await Pusher(store, client, "county-hospital", ctx).push()

    first = asyncio.run(push())
    assert first.created > 0
    assert first.failed == first.dead_lettered == 0
    # then a record the server refuses: the second push dead-letters it with the reason
    refused = m.Goal(
        id="goal-broken-reference",
        updated_at=now,
        patient="pat-harris",
        description=m.Concept(text="Points at a resource type the server does not know"),
        lifecycle_status=m.GoalLifecycle.active,
        addresses=[m.Ref(reference="Unicorn/no-such-thing")],
    )
    store.put_records([refused], ["county-hospital", "closed-clinic"], datetime.now(UTC))
    assert asyncio.run(push()).dead_lettered == 1

    # the same field changed by the care manager and by a clinician in the EHR
    goal = store.records.get("goal", "goal-rivera-weight")
    assert isinstance(goal, m.Goal)
    goal.priority = m.GoalPriority.low
    store.put_records([goal], [], now)
    on_server = _find(fhir, "Goal", ctx.system("goal"), "goal-rivera-weight")
    on_server["priority"] = {"coding": [{"system": PRIORITY, "code": "medium-priority"}]}
    assert fhir.put(f"/Goal/{on_server['id']}", json=on_server).status_code == 200

    async def pull() -> None:
        async with FhirClient(url) as client:
            summary = await Puller(store, client, "county-hospital", ctx).pull()
            assert summary.conflicts == 1

    asyncio.run(pull())

    # a discharge 20 days ago started transitional care: its activities are due, all overdue
    discharged = now.date() - timedelta(days=20)
    plan = transitional_plan(
        "pat-brooks",
        "county-hospital",
        Discharge("enc-browser", discharged, "home"),
        windows(discharged, high_complexity=True),
        now,
    )
    store.put_records([plan], [], now)

    # a handoff built for a patient whose package has gaps
    incomplete = read_records(FIXTURES / "incomplete" / "no-problems-no-meds-no-followup.json")
    store.put_records(incomplete, [], now)
    findings = check(package_of(store.records.of_patient("pat-doyle")))
    store.handoffs.add(
        package_id=uuid.uuid4().hex,
        patient_id="pat-doyle",
        handoff_type="transfer",
        author="Care management",
        destination=None,
        findings=[{"code": f.code, "severity": f.severity, "record": f.record} for f in findings],
        delivery=None,
        now=now,
    )


@pytest.fixture
def served(tmp_path: Path, fhir_base_url: str, fhir: httpx.Client) -> Iterator[Served]:
    """The real app on a free loopback port, over a store filled by real sync runs."""
    namespace = f"https://bridge.test/{uuid.uuid4().hex[:10]}"
    database = f"sqlite:///{tmp_path / 'bridge.db'}"
    settings = Settings(
        database_url=database,
        namespace=namespace,
        connections={
            "county-hospital": ConnectionConfig(base_url=fhir_base_url, enrol="all"),
            "closed-clinic": ConnectionConfig(
                base_url=f"http://127.0.0.1:{_closed_port()}/fhir", enrol="all"
            ),
        },
    )
    store = Store(database)
    _fill_store(store, fhir_base_url, MappingContext(namespace, datetime.now(UTC)), fhir)
    now = datetime.now(UTC)
    keys = {
        "read": store.api_keys.create("viewer", ["read"], now),
        "write": store.api_keys.create("operator", ["read", "write"], now),
    }
    (dead,) = store.outbox.dead_letters("county-hospital")
    (conflict,) = store.conflicts.find()
    (handoff,) = store.handoffs.recent()

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="warning", ws="none", lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    for _ in range(600):  # until uvicorn says it is serving (about a second)
        if server.started or not thread.is_alive():
            break
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield Served(f"http://127.0.0.1:{port}", store, keys, dead.id, conflict.id, handoff.id)
    finally:
        server.should_exit = True
        thread.join(60)
        listener.close()
        store.close()


def _shots() -> Path:
    out = Path(os.environ.get("FHIR_BRIDGE_TEST_OUTPUT", "test-output")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    return out


def test_the_dashboard_in_a_real_browser(served: Served) -> None:
    """Sign-in refuses a wrong key; the page shows the data; a retry button requeues."""
    playwright = pytest.importorskip("playwright.sync_api")
    shots = _shots()
    store = served.store
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{served.url}/dashboard")
            assert page.url == f"{served.url}/dashboard/login"

            page.fill("#key", "fbk_this-is-not-a-key")
            page.click("button[type=submit]")
            assert "That API key is unknown, revoked or expired." in page.inner_text("[role=alert]")
            assert page.locator("#key").is_visible()
            page.screenshot(path=shots / "dashboard-login-refused.png")

            page.fill("#key", served.keys["write"])
            page.click("button[type=submit]")
            page.wait_for_url(f"{served.url}/dashboard")
            cookie = next(c for c in page.context.cookies() if c["name"] == "fhir_bridge_dashboard")
            assert cookie["httpOnly"]
            assert cookie["sameSite"] == "Strict"

            hospital = page.locator("#connection-county-hospital")
            clinic = page.locator("#connection-closed-clinic")
            assert "reachable" in hospital.locator(".badge").inner_text()
            assert "transaction" in hospital.inner_text()
            assert "conditional update" in hospital.inner_text()
            assert "unreachable" in clinic.locator(".badge").inner_text()
            assert "refused or failed" in clinic.locator(".problem").inner_text()
            for name, card in (("county-hospital", hospital), ("closed-clinic", clinic)):
                depth = store.outbox.depth(name)
                assert card.locator(".queue-pending").inner_text() == str(depth.pending)
                assert card.locator(".queue-dead").inner_text() == str(depth.dead)
            assert int(clinic.locator(".queue-pending").inner_text()) > 0  # it never got any

            dead_row = page.locator(f"#dead-letter-{served.dead_id}")
            assert "goal/goal-broken-reference" in dead_row.inner_text()
            assert "HTTP 4" in dead_row.inner_text()
            conflict_row = page.locator(f"#conflict-{served.conflict_id}")
            assert "goal/goal-rivera-weight" in conflict_row.inner_text()
            assert "priority" in conflict_row.inner_text()
            assert "low" in conflict_row.inner_text()
            assert "medium" in conflict_row.inner_text()
            handoff_row = page.locator(f"#handoff-{served.handoff_id}")
            assert "pat-doyle" in handoff_row.inner_text()
            assert "no-medication-list" in handoff_row.inner_text()
            runs = page.locator("#runs tbody tr")
            assert runs.count() == 3  # two pushes and a pull
            assert page.locator("#throughput svg rect.pushed").count() >= 1
            page.screenshot(path=shots / "dashboard.png", full_page=True)

            dead_row.locator("button", has_text="Retry").click()
            page.wait_for_url(f"{served.url}/dashboard?requeued=1#dead-letters")
            assert "1 dead letter is queued again" in page.inner_text("[role=status]")
            assert page.locator(f"#dead-letter-{served.dead_id}").count() == 0
            page.screenshot(path=shots / "dashboard-after-retry.png", full_page=True)

            page.click("nav >> text=Due items")
            page.wait_for_url(f"{served.url}/dashboard/due")
            patient = page.locator("#due-pat-brooks")
            assert patient.is_visible()
            assert patient.locator("tr.due-item").count() == 3
            assert patient.locator("tr.due-item.overdue").count() == 3
            overdue = page.locator("tr.due-item.overdue").count()
            assert page.inner_text("#due-overdue") == str(overdue)
            assert overdue >= 3  # the fixtures' own transitional plans may add theirs
            page.screenshot(path=shots / "dashboard-due.png", full_page=True)
        finally:
            browser.close()
    assert store.outbox.dead_letters() == []
    (entry,) = [
        e for e in store.outbox.due("county-hospital", datetime.now(UTC)) if e.id == served.dead_id
    ]
    assert (entry.record_id, entry.status, entry.attempts) == (
        "goal-broken-reference",
        OutboxStatus.pending,
        0,
    )


def test_a_read_only_key_sees_the_page_without_buttons(served: Served) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{served.url}/dashboard/login")
            page.fill("#key", served.keys["read"])
            page.click("button[type=submit]")
            page.wait_for_url(f"{served.url}/dashboard")
            assert page.locator(f"#dead-letter-{served.dead_id}").is_visible()
            assert page.locator("#dead-letters button").count() == 0
            assert "retrying needs the write scope" in page.inner_text("#dead-letters")
            page.screenshot(path=_shots() / "dashboard-read-only.png", full_page=True)
        finally:
            browser.close()
    assert [d.id for d in served.store.outbox.dead_letters()] == [served.dead_id]
