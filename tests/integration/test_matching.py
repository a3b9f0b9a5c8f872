"""Patient matching against a real HAPI server playing hospital one, through the CLI as an
operator runs it: the hospital already holds its patients, and the bridge must never make a
second one nor write over the hospital's demographics."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import FIXTURES

NO_CACHE = {"Cache-Control": "no-cache"}
PATIENT = "pat-rivera"
Json = dict[str, Any]


class Bridge:
    """``fhir-bridge`` in a directory of its own, configured for hospital one in match mode
    (enrolled patients only, the default)."""

    def __init__(self, tmp_path: Path, base_url: str) -> None:
        self.dir = tmp_path
        self.namespace = f"https://bridge.test/{uuid.uuid4().hex[:10]}"
        self.mrn_system = f"urn:test:mrn:{uuid.uuid4().hex[:10]}"
        (tmp_path / "fhir-bridge.toml").write_text(
            f'database_url = "sqlite:///{tmp_path / "bridge.db"}"\n'
            f'namespace = "{self.namespace}"\n'
            "[connections.hospital-one]\n"
            f'base_url = "{base_url}"\n'
            'patient_mode = "match"\n'
            f'mrn_system = "{self.mrn_system}"\n'
        )

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        exe = shutil.which("fhir-bridge", path=str(Path(sys.executable).parent)) or "fhir-bridge"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_BRIDGE_")}
        env["FHIR_BRIDGE_CONFIG"] = str(self.dir / "fhir-bridge.toml")
        return subprocess.run(
            [exe, *args],
            capture_output=True,
            text=True,
            cwd=self.dir,
            env=env,
            timeout=300,
            check=False,
        )

    def load(self, package: Json) -> None:
        path = self.dir / "records.json"
        path.write_text(json.dumps(package))
        done = self("load", str(path))
        assert done.returncode == 0, done.stderr

    def enrol(self, *mrn: str) -> None:
        """Enrol the patient with hospital one (its records go there only once enrolled)."""
        done = self("enrol", PATIENT, "hospital-one", *(("--mrn", *mrn) if mrn else ()))
        assert done.returncode == 0, done.stderr

    def ours(self, fhir: httpx.Client, resource_type: str, kind: str, value: str) -> list[Json]:
        return search(fhir, resource_type, identifier=f"{self.namespace}/{kind}|{value}")


def search(fhir: httpx.Client, resource_type: str, **params: str) -> list[Json]:
    answer = fhir.get(f"/{resource_type}", params=params, headers=NO_CACHE)
    assert answer.status_code == 200, answer.text
    return [e["resource"] for e in answer.json().get("entry", [])]


def package(*, family: str = "Rivera", given: str = "Marisol") -> Json:
    """The diabetes and heart failure fixture, its patient named as asked."""
    data: Json = json.loads((FIXTURES / "cc-diabetes-heart-failure.json").read_text())
    patient = data["patient"]
    patient["names"] = [{"family": family, "given": [given], "use": "official"}]
    return data


def hospital_patient(fhir: httpx.Client, family: str, given: str, **more: Any) -> Json:
    body = {
        "resourceType": "Patient",
        "name": [{"family": family, "given": [given]}],
        "birthDate": "1958-07-14",
        "gender": "female",
        **more,
    }
    created = fhir.post("/Patient", json=body)
    assert created.status_code == 201, created.text
    return dict(created.json())


def test_the_hospitals_own_patient_is_matched_by_mrn_and_left_as_it_is(
    tmp_path: Path, fhir_base_url: str, fhir: httpx.Client
) -> None:
    bridge = Bridge(tmp_path, fhir_base_url)
    mrn = {"system": bridge.mrn_system, "value": "H-004417"}
    theirs = hospital_patient(
        fhir,
        "Rivera-Lopez",  # slightly different demographics: the hospital's are kept
        "Marisa",
        identifier=[mrn],
        telecom=[{"system": "phone", "value": "555-0199"}],
    )
    bridge.load(package())
    bridge.enrol(mrn["value"])  # the hospital's MRN, known from the referral

    pushed = bridge("push", "--connection", "hospital-one")

    assert pushed.returncode == 0, pushed.stderr
    (one,) = search(fhir, "Patient", identifier=f"{mrn['system']}|{mrn['value']}")
    assert one["id"] == theirs["id"]
    assert one["meta"]["versionId"] == theirs["meta"]["versionId"]  # never written
    assert one["name"] == [{"family": "Rivera-Lopez", "given": ["Marisa"]}]
    assert one["telecom"] == [{"system": "phone", "value": "555-0199"}]
    assert bridge.ours(fhir, "Patient", "patient", PATIENT) == []  # no second patient
    (plan,) = bridge.ours(fhir, "CarePlan", "careplan", "cp-rivera-ccm")
    assert plan["subject"]["reference"] == f"Patient/{theirs['id']}"
    goals = bridge.ours(fhir, "Goal", "goal", "goal-rivera-a1c")
    assert [g["subject"]["reference"] for g in goals] == [f"Patient/{theirs['id']}"]

    status = bridge("status", "--json")
    assert status.returncode == 0, status.stderr
    patients = json.loads(status.stdout)["patients"]["hospital-one"]
    assert patients == {"mode": "match", "matched": 1, "held": 0}
    shown = bridge("match", PATIENT, "--connection", "hospital-one")
    assert f"matched to Patient/{theirs['id']} (by identifier" in shown.stdout


def test_an_ambiguous_match_holds_the_patient_until_accepted_by_hand(
    tmp_path: Path, fhir_base_url: str, fhir: httpx.Client
) -> None:
    bridge = Bridge(tmp_path, fhir_base_url)
    family = "Ambig" + "".join(chr(97 + int(c, 16) % 26) for c in uuid.uuid4().hex[:8])
    first = hospital_patient(fhir, family, "Dana")
    hospital_patient(fhir, family, "Dana")  # a namesake born the same day
    bridge.load(package(family=family, given="Dana"))
    bridge.enrol()

    pushed = bridge("push", "--connection", "hospital-one")

    assert pushed.returncode == 0, pushed.stderr
    assert "held" in pushed.stdout + pushed.stderr  # the counts table
    for resource_type, kind, value in (
        ("CarePlan", "careplan", "cp-rivera-ccm"),
        ("Goal", "goal", "goal-rivera-a1c"),
        ("Patient", "patient", PATIENT),
    ):
        assert bridge.ours(fhir, resource_type, kind, value) == []  # nothing written for them
    held = bridge("held", "--json")
    (entry,) = json.loads(held.stdout)
    assert (entry["patient_id"], entry["step"], entry["candidates"]) == (PATIENT, "demographics", 2)
    assert family not in entry["reason"]  # counts and steps, never the name

    wrong = bridge("match", PATIENT, "--connection", "hospital-one", "--accept", "no-such-patient")
    assert wrong.returncode == 2
    assert "no Patient/no-such-patient" in wrong.stderr

    accepted = bridge("match", PATIENT, "--connection", "hospital-one", "--accept", first["id"])
    assert accepted.returncode == 0, accepted.stderr
    again = bridge("push", "--connection", "hospital-one")
    assert again.returncode == 0, again.stderr

    (plan,) = bridge.ours(fhir, "CarePlan", "careplan", "cp-rivera-ccm")
    assert plan["subject"]["reference"] == f"Patient/{first['id']}"
    assert len(search(fhir, "Patient", family=family)) == 2  # still the hospital's two
    assert json.loads(bridge("held", "--json").stdout) == []
