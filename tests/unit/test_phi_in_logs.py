"""No PHI in the logs: push, pull, a handoff and the API run with DEBUG logging on a fixture
patient, and every line is scanned for the patient's names, birth date, phone, address and MRN.

The scan is shown to find a planted line first, so a scan that cannot fail does not pass.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fhir_bridge import logs
from fhir_bridge.config import ConnectionConfig, Settings
from fhir_bridge.documents import read_records
from tests.api_client import Api, api_keys
from tests.helpers import FIXTURES
from tests.unit.sync.fhir_server import BASE, FhirServer

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
FIXTURE = FIXTURES / "cc-diabetes-heart-failure.json"


def phi_of(package: Path) -> set[str]:
    """The fixture patient's identifying values, as they would appear in a line."""
    patient = json.loads(package.read_text())["patient"]
    values = {patient["birth_date"], patient["phone"]}
    for name in patient["names"]:
        values.add(name["family"])
        values.update(name["given"])
    values.update(patient["address"]["lines"])
    values.update(i["value"] for i in patient["identifiers"])  # the MRN
    return {v for v in values if v}


def hits(lines: list[str], phi: set[str]) -> list[str]:
    return [f"{value!r} in {line}" for line in lines for value in phi if value in line]


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    out = io.StringIO()
    logs.configure("DEBUG", "json", stream=out)
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)
    for name in ("httpx", "httpcore", "hpack"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def test_the_scan_finds_a_planted_line(captured: io.StringIO) -> None:
    phi = phi_of(FIXTURE)
    assert {"Rivera", "1958-07-14", "555-0131", "PAT-RIVERA"} <= phi
    logging.getLogger("fhir_bridge.test").info("matched Marisol Rivera, born 1958-07-14")
    lines = captured.getvalue().splitlines()
    assert len(hits(lines, phi)) == 3


def test_push_pull_handoff_and_the_api_log_no_phi(captured: io.StringIO, tmp_path: Path) -> None:
    server = FhirServer()
    url = f"sqlite:///{tmp_path / 'api.db'}"
    settings = Settings(
        database_url=url,
        connections={"ehr": ConnectionConfig(base_url=BASE, enrol="all", patient_mode="create")},
    )
    call, keys = Api(settings, transport=server.transport), api_keys(url)
    store = call.store()
    try:
        store.put_records(read_records(FIXTURE), ["ehr"], NOW)
    finally:
        store.close()
    patient = json.loads(FIXTURE.read_text())["patient"]

    assert call("POST", "/v1/sync/ehr/push", key=keys["write"]).status_code == 200
    assert len(server.of_type("Patient")) == 1
    (on_server,) = server.of_type("Patient")
    on_server["telecom"] = [{"system": "phone", "value": "555-0199"}]  # a change in the EHR
    assert call("POST", "/v1/sync/ehr/pull", key=keys["write"]).status_code == 200
    made = call(
        "POST", "/v1/handoffs", key=keys["write"], json={"patient_id": patient["id"], "to": "ehr"}
    )
    assert made.status_code == 201, made.text
    edited = {**patient, "updated_at": "2025-03-04T09:00:00Z"}
    assert call("PUT", f"/v1/patients/{patient['id']}", key=keys["write"], json=edited).is_success
    broken = {**patient, "birth_date": "not a date"}  # refused, with PHI in the body
    assert (
        call("PUT", f"/v1/patients/{patient['id']}", key=keys["write"], json=broken).status_code
        == 422
    )
    assert call("GET", f"/v1/patients/{patient['id']}", key=keys["read"]).status_code == 200

    lines = captured.getvalue().splitlines()
    assert len(lines) > 10  # DEBUG on: the runs did log
    assert any('"action":"push"' in line for line in lines)
    assert any('"action":"pull"' in line for line in lines)
    assert hits(lines, phi_of(FIXTURE) | {"555-0199"}) == []
