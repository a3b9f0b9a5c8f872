"""The dashboard's due page through the real app on a real SQLite store: behind sign-in,
linked from the dashboard, the same items as GET /v1/due, per patient, soonest first, overdue
marked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from fhir_bridge import model as m
from fhir_bridge.api import create_app
from fhir_bridge.config import Settings
from fhir_bridge.store import Store
from fhir_bridge.sync._transitions import Discharge, transitional_plan, windows
from tests.unit.api.test_dashboard import Browser

NOW = datetime.now(UTC)
TODAY = NOW.date()


def _plan(patient_id: str, encounter_id: str, discharged: date, *, high: bool) -> m.CarePlan:
    due = windows(discharged, high_complexity=high)
    return transitional_plan(
        patient_id, "county", Discharge(encounter_id, discharged, "home"), due, NOW
    )


@dataclass
class Due:
    client: Browser
    store: Store
    keys: dict[str, str]

    def sign_in(self, scope: str = "read") -> None:
        answer = self.client.post(
            "/dashboard/login", data={"key": self.keys[scope]}, follow_redirects=False
        )
        assert answer.status_code == 303, answer.text
        self.client.read_csrf()


@pytest.fixture
def due(tmp_path: Path) -> Iterator[Due]:
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    store = Store(url)
    # pat-late was discharged 20 days ago: every activity is overdue
    late = _plan("pat-late", "enc-1", TODAY - timedelta(days=20), high=True)
    # pat-soon was discharged today: nothing overdue; its contact is done already
    soon = _plan("pat-soon", "enc-2", TODAY, high=False)
    first = soon.activities[0].planned
    assert first is not None
    first.status = m.ActivityStatus.completed
    # a plan that is not transitional care has no due items
    other = m.CarePlan.model_validate(
        soon.model_dump() | {"id": "cp-other", "patient": "pat-other", "categories": []}
    )
    store.put_records([late, soon, other], [], NOW)
    keys = {s: store.api_keys.create(s, [s], NOW) for s in ("read", "write")}
    yield Due(Browser(create_app(Settings(database_url=url))), store, keys)
    store.close()


def _rows(html: str) -> list[tuple[str, str, bool]]:
    """(patient, due day, overdue) of each item row, in page order."""
    out = []
    for article in re.findall(r'<article class="card patient-due".*?</article>', html, re.S):
        patient = re.search(r'data-patient="([^"]+)"', article)
        assert patient is not None
        for row in re.findall(r'<tr class="due-item[^"]*".*?</tr>', article, re.S):
            day = re.search(r'<td class="mono">(\d{4}-\d\d-\d\d)', row)
            assert day is not None
            out.append((patient.group(1), day.group(1), 'class="due-item overdue"' in row))
    return out


def test_without_a_session_the_due_page_sends_you_to_sign_in(due: Due) -> None:
    answer = due.client.get("/dashboard/due", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/login"


def test_the_dashboard_links_to_the_due_page(due: Due) -> None:
    due.sign_in()
    assert 'href="/dashboard/due"' in due.client.get("/dashboard").text


def test_the_due_page_lists_the_same_items_as_the_api_per_patient_soonest_first(
    due: Due,
) -> None:
    due.sign_in()
    page = due.client.get("/dashboard/due")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    rows = _rows(page.text)
    api = due.client.get("/v1/due", headers={"Authorization": f"Bearer {due.keys['read']}"}).json()
    assert sorted((i["patient_id"], i["due"], i["overdue"]) for i in api["items"]) == sorted(rows)
    # the late patient first (its soonest item is the soonest), three overdue items
    assert [r for r in rows if r[0] == "pat-late"] == list(rows[:3])
    assert [d for _, d, _ in rows[:3]] == sorted(d for _, d, _ in rows[:3])
    assert all(overdue for p, _, overdue in rows if p == "pat-late")
    assert not any(overdue for p, _, overdue in rows if p == "pat-soon")
    # per patient, soonest first; the completed contact and the other plan are not listed
    soon = [d for p, d, _ in rows if p == "pat-soon"]
    assert soon == sorted(soon)
    assert len(soon) == 2
    assert "pat-other" not in page.text
    assert re.search(r'id="due-overdue">3<', page.text)
    assert re.search(r'id="due-items">5<', page.text)


def test_the_due_page_of_one_patient(due: Due) -> None:
    due.sign_in()
    page = due.client.get("/dashboard/due", params={"patient_id": "pat-soon"}).text
    assert {p for p, _, _ in _rows(page)} == {"pat-soon"}
    assert "pat-late" not in page


def test_nothing_due_still_makes_a_page(due: Due) -> None:
    due.sign_in()
    page = due.client.get("/dashboard/due", params={"patient_id": "pat-nobody"})
    assert page.status_code == 200
    assert "Nothing is due." in page.text
    assert due.client.get("/dashboard/due", params={"patient_id": "x" * 65}).status_code == 422
