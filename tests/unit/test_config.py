"""Configuration: the patient mode a connection gets when none is set."""

from __future__ import annotations

import pytest

from fhir_bridge.config import ConnectionConfig, is_local


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://localhost:8080/fhir", True),
        ("http://127.0.0.1:8080/fhir", True),
        ("http://127.8.0.3/fhir", True),
        ("http://[::1]:8080/fhir", True),
        ("http://sandbox.localhost/fhir", True),
        ("https://ehr.example.org/fhir", False),
        ("http://10.0.0.5/fhir", False),
        ("https://localhost.example.org/fhir", False),
    ],
)
def test_a_server_on_this_machine_is_told_by_its_base_url(url: str, local: bool) -> None:
    assert is_local(url) is local
    assert ConnectionConfig(base_url=url).effective_patient_mode == ("create" if local else "match")


def test_a_set_patient_mode_wins_over_the_base_url() -> None:
    local = ConnectionConfig(base_url="http://localhost:8080/fhir", patient_mode="match")
    remote = ConnectionConfig(base_url="https://ehr.example.org/fhir", patient_mode="create")
    assert (local.effective_patient_mode, remote.effective_patient_mode) == ("match", "create")
