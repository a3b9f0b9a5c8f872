"""Configuration: the patient mode a connection gets when none is set; credentials never sent
in the clear."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from fhir_bridge.config import ConnectionConfig, is_local, load_settings
from fhir_bridge.errors import InputError


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


SECRET = {"kind": "client-credentials", "client_id": "bridge", "client_secret_env": "S"}


@pytest.mark.parametrize(
    ("base_url", "auth", "field"),
    [
        ("http://ehr.example.org/fhir", {"kind": "bearer", "token_env": "T"}, "base_url"),
        ("http://10.0.0.5/fhir", SECRET | {"token_url": "https://ehr/token"}, "base_url"),
        ("https://ehr.example.org/fhir", SECRET | {"token_url": "http://ehr/t"}, "auth.token_url"),
    ],
)
def test_credentials_over_plain_http_to_another_machine_are_refused(
    base_url: str, auth: dict[str, str], field: str
) -> None:
    with pytest.raises(ValidationError, match=f"{field} is plain http to another machine"):
        ConnectionConfig.model_validate({"base_url": base_url, "auth": auth})
    allowed = {"base_url": base_url, "auth": auth, "allow_insecure_http": True}
    assert ConnectionConfig.model_validate(allowed).allow_insecure_http


@pytest.mark.parametrize(
    ("base_url", "auth"),
    [
        ("http://127.0.0.1:8080/fhir", {"kind": "bearer", "token_env": "T"}),  # loopback
        ("http://localhost:8080/fhir", SECRET | {"token_url": "http://localhost/token"}),
        ("https://ehr.example.org/fhir", {"kind": "bearer", "token_env": "T"}),
        ("http://ehr.example.org/fhir", {"kind": "none"}),  # nothing to leak
    ],
)
def test_https_loopback_or_no_credentials_are_taken(base_url: str, auth: dict[str, str]) -> None:
    ConnectionConfig.model_validate({"base_url": base_url, "auth": auth})


def test_a_url_with_user_and_password_is_refused() -> None:
    with pytest.raises(ValidationError, match="base_url holds a user name or password"):
        ConnectionConfig(base_url="https://bridge:hunter2@ehr.example.org/fhir")


def test_the_refusal_names_the_connection_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "fhir-bridge.toml"
    config.write_text(
        '[connections.county]\nbase_url = "http://ehr.example.org/fhir"\n'
        'auth = { kind = "bearer", token_env = "T" }\n'
    )
    monkeypatch.setenv("FHIR_BRIDGE_CONFIG", str(config))
    with pytest.raises(InputError) as refused:
        load_settings()
    assert "connections.county" in str(refused.value)
    assert "allow_insecure_http" in str(refused.value)
