"""`enrol`, `unenrol`, `load` with enrolments and `status`, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.acceptance.conftest import Run
from tests.helpers import FIXTURES

PACKAGE = FIXTURES / "cc-diabetes-heart-failure.json"
PATIENT = "pat-rivera"
CONFIG = """\
[connections.county]
base_url = "http://127.0.0.1:9/fhir"
mrn_system = "urn:oid:2.16.840.1.113883.19.5"

[connections.river]
base_url = "http://127.0.0.1:9/fhir"

[connections.pantry]
base_url = "http://127.0.0.1:9/fhir"
organization = { id = "org-eastside-food-pantry" }

[connections.registry]
base_url = "http://127.0.0.1:9/fhir"
enrol = "all"
"""


def configure(tmp_path: Path) -> None:
    (tmp_path / "fhir-bridge.toml").write_text(CONFIG)


def status(cli: Run) -> dict[str, object]:
    done = cli("status", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_enrol_queues_the_patient_and_unenrol_stops_it(cli: Run, tmp_path: Path) -> None:
    configure(tmp_path)
    loaded = cli("load", PACKAGE)
    assert loaded.returncode == 0, loaded.stderr
    queue = status(cli)["queue"]
    assert isinstance(queue, dict)
    assert set(queue) == {"registry"}  # listed connections: nobody is enrolled yet
    enrolled = cli("enrol", PATIENT, "county", "--mrn", "MRN-0042")
    assert enrolled.returncode == 0, enrolled.stderr
    assert f"enrolled {PATIENT} with county (MRN MRN-0042): 12 records queued" in enrolled.stdout
    report = status(cli)
    assert report["enrolled"] == {"county": 1}
    assert report["queue"]["county"] == {"due": 12}  # type: ignore[index]
    text = cli("status").stdout
    assert "routing county: 1 patients enrolled" in text
    assert "routing registry: every patient (enrol = all)" in text
    gone = cli("unenrol", PATIENT, "county")
    assert gone.returncode == 0, gone.stderr
    assert f"unenrolled {PATIENT} from county: 12 queued entries dropped" in gone.stdout
    assert status(cli)["enrolled"] == {}
    assert "was not enrolled" in cli("unenrol", PATIENT, "county").stdout


def test_enrol_refuses_unknown_connections_and_patients(cli: Run, tmp_path: Path) -> None:
    configure(tmp_path)
    cli("load", PACKAGE)
    unknown = cli("enrol", PATIENT, "nowhere")
    assert unknown.returncode == 2
    assert "CONNECTION: no connection 'nowhere' in fhir-bridge.toml" in unknown.stderr
    assert "county, river, pantry, registry" in unknown.stderr
    missing = cli("enrol", "pat-nobody", "county")
    assert missing.returncode == 1
    assert "no patient 'pat-nobody' in the store" in missing.stderr
    assert cli("unenrol", PATIENT, "nowhere").returncode == 2


def test_a_package_carries_its_enrolments(cli: Run, tmp_path: Path) -> None:
    configure(tmp_path)
    package = json.loads(PACKAGE.read_text())
    package["enrolments"] = [{"connection": "river", "mrn": "R-1"}]
    (tmp_path / "enrolled.json").write_text(json.dumps(package))
    loaded = cli("load", "enrolled.json")
    assert loaded.returncode == 0, loaded.stderr
    assert "1 enrolments" in loaded.stdout
    assert status(cli)["enrolled"] == {"river": 1}
    package["enrolments"] = [{"connection": "river"}, {"connection": "rivre"}]
    (tmp_path / "typo.json").write_text(json.dumps(package))
    typo = cli("load", "typo.json")
    assert typo.returncode == 2
    assert "typo.json.enrolments[1].connection: no connection 'rivre'" in typo.stderr
