"""`load` of .ndjson files (one record or package a line), streamed, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.acceptance.conftest import Run
from tests.helpers import FIXTURES

PACKAGES = ("cc-diabetes-heart-failure.json", "specialist-referral-ckd.json")


def _records(name: str) -> int:
    package = json.loads((FIXTURES / name).read_text())
    return 1 + sum(len(v) for v in package.values() if isinstance(v, list))


def test_load_of_ndjson_stores_every_line_and_again_changes_nothing(
    cli: Run, tmp_path: Path
) -> None:
    panel = tmp_path / "panel.ndjson"
    lines = [json.dumps(json.loads((FIXTURES / name).read_text())) for name in PACKAGES]
    panel.write_text(lines[0] + "\n\n" + lines[1] + "\n")
    total = sum(_records(name) for name in PACKAGES)
    first = cli("load", panel)
    assert first.returncode == 0, first.stderr
    assert f"loaded {total} records: {total} new or changed, 0 unchanged" in first.stdout
    second = cli("load", panel)
    assert f"loaded {total} records: 0 new or changed, {total} unchanged" in second.stdout
    goal = cli("get", "goal", "goal-rivera-a1c")
    assert goal.returncode == 0, goal.stderr


def test_a_bad_line_names_file_line_and_field_and_nothing_is_stored(
    cli: Run, tmp_path: Path
) -> None:
    good = json.loads((FIXTURES / PACKAGES[0]).read_text())
    goal = dict(good["goals"][0], id="goal-extra", kind="goal")
    del goal["description"]
    panel = tmp_path / "panel.ndjson"
    panel.write_text(json.dumps(good) + "\n" + json.dumps(goal) + "\n")
    done = cli("load", panel)
    assert done.returncode == 2
    assert f"{panel}:2.description" in done.stderr
    assert "Traceback" not in done.stderr
    assert cli("get", "goal", "goal-rivera-a1c").returncode == 1  # the good line: not stored

    panel.write_text(json.dumps(good) + "\n{not json\n")
    broken = cli("load", panel)
    assert broken.returncode == 2
    assert f"{panel}:2: malformed JSON" in broken.stderr


def test_pull_bulk_loads_every_patient_so_a_patient_is_usage(cli: Run) -> None:
    done = cli("pull", "--bulk", "--patient", "p1", "--fhir-url", "http://127.0.0.1:9/fhir")
    assert done.returncode == 2
    assert "--bulk loads every linked patient" in done.stderr
