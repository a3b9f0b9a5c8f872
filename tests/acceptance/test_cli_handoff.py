"""`fhir-bridge handoff` and `receive` as a user runs them (no server needed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.acceptance.conftest import Run
from tests.helpers import FIXTURES

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


def test_handoff_then_receive_into_an_empty_store(cli: Run, tmp_path: Path) -> None:
    assert cli("load", FIXTURES / "older-adult-caregiver.json").returncode == 0
    done = cli(
        "handoff", "pat-garcia", "--type", "transfer", "--out", "doc.json", "--html", "page.html"
    )
    assert done.returncode == 0, done.stderr
    assert "completeness check" in done.stderr
    document = json.loads((tmp_path / "doc.json").read_text())
    assert document["type"] == "document"
    listed = cli("handoffs")
    assert "pat-garcia" in listed.stdout

    other = tmp_path / "receiver"
    other.mkdir()
    env = {
        **os.environ,
        "FHIR_BRIDGE_DATABASE_URL": f"sqlite:///{other / 'other.db'}",
        "FHIR_BRIDGE_NAMESPACE": "https://bridge.test/id",
    }
    exe = Path(
        shutil.which("fhir-bridge", path=str(Path(os.sys.executable).parent)) or "fhir-bridge"
    )
    received = subprocess.run(
        [str(exe), "receive", str(tmp_path / "doc.json")],
        cwd=other,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert received.returncode == 0, received.stderr
    assert "new patient" in received.stdout
    goal = subprocess.run(
        [str(exe), "get", "goal", "goal-garcia-nofalls"],
        cwd=other,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert goal.returncode == 0, goal.stderr
    assert json.loads(goal.stdout)["lifecycle_status"] == "active"

    again = subprocess.run(
        [str(exe), "receive", str(tmp_path / "doc.json")],
        cwd=other,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "(identifier)" in again.stdout  # matched, no second patient


def test_strict_refuses_to_send_a_package_with_errors(cli: Run) -> None:
    assert (
        cli("load", FIXTURES / "incomplete" / "no-problems-no-meds-no-followup.json").returncode
        == 0
    )
    done = cli(
        "handoff", "pat-doyle", "--strict", "--to", "http://127.0.0.1:9/fhir", "--out", "d.json"
    )
    assert done.returncode == 1
    assert "not sent" in done.stderr
    assert "no-medication-list" in done.stderr


def test_unknown_patient_and_type(cli: Run) -> None:
    assert cli("handoff", "nobody").returncode == 2
    assert cli("load", FIXTURES / "older-adult-caregiver.json").returncode == 0
    assert cli("handoff", "pat-garcia", "--type", "discharge").returncode == 2


@pytest.mark.skipif(BROWSER is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_html_summary_in_a_real_headless_browser(cli: Run, tmp_path: Path) -> None:
    """Chromium renders the page; the sections are in its DOM; a screenshot is kept."""
    assert cli("load", FIXTURES / "transitional-care-copd.json").returncode == 0
    assert cli("handoff", "pat-okafor", "--out", "doc.json", "--html", "page.html").returncode == 0
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    page = f"file://{tmp_path / 'page.html'}"
    dom = subprocess.run(
        [str(BROWSER), *flags, "--dump-dom", page],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    for title in (
        "Problems and health concerns",
        "Goals",
        "Plan of care",
        "Medications",
        "Care team",
    ):
        assert f"<h2>{title}</h2>" in dom.stdout
    assert "Okafor" in dom.stdout
    shots = Path(os.environ.get("FHIR_BRIDGE_TEST_OUTPUT", "test-output"))
    shots.mkdir(parents=True, exist_ok=True)
    shot = shots.resolve() / "handoff-summary.png"
    subprocess.run(
        [str(BROWSER), *flags, f"--screenshot={shot}", "--window-size=1200,1600", page],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shot.is_file()
    assert shot.stat().st_size > 10_000
