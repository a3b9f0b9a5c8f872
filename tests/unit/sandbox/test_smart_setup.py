"""The connection block `sandbox start --profile` writes: settings the bridge reads as they are."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhir_bridge.config import load_settings
from fhir_bridge.fhir import SmartBackendServices, make_auth
from fhir_bridge.sandbox import (
    AuthServerUrls,
    SandboxError,
    SmartSetup,
    generate_key_pair,
    profile_scopes,
)


def test_epic_like_reads_care_plans_and_goals_and_writes_the_rest() -> None:
    scopes = profile_scopes("epic-like")
    assert {"system/CarePlan.rs", "system/Goal.rs", "system/Task.cruds"} <= set(scopes)
    assert "system/CarePlan.cruds" not in scopes
    assert "system/CarePlan.cruds" in profile_scopes("oracle-like")
    with pytest.raises(SandboxError, match="without an authorization server"):
        profile_scopes("open")


def test_the_written_block_is_a_connection_the_bridge_can_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "smart" / "client-key.pem"
    key = generate_key_pair("ES384")
    key.write_private(key_file)
    setup = SmartSetup(
        profile="epic-like",
        fhir_base_url="http://127.0.0.1:8093/fhir",
        auth_server=AuthServerUrls("http://127.0.0.1:8180"),
        client_id="fhir-bridge-epic-like-8093",
        key_id=key.key_id,
        algorithm="ES384",
        scopes=tuple(profile_scopes("epic-like")),
        key_file=key_file,
        config_file=tmp_path / "fhir-bridge.toml",
    )
    setup.config_file.write_text(setup.toml(), encoding="utf-8")
    monkeypatch.setenv("FHIR_BRIDGE_CONFIG", str(setup.config_file))
    settings = load_settings()
    connection = settings.connections["sandbox-epic-like"]
    assert connection.base_url == "http://127.0.0.1:8093/fhir"
    auth = connection.auth
    assert auth.kind == "smart-backend"
    assert auth.token_url == (
        "http://127.0.0.1:8180/realms/fhir-bridge/protocol/openid-connect/token"
    )
    built = make_auth(
        auth.kind,
        base_url=connection.base_url,
        token_url=auth.token_url,
        client_id=auth.client_id,
        private_key_file=auth.private_key_file,
        key_id=auth.key_id,
        algorithm=auth.algorithm,
        scope=auth.scope,
    )
    assert isinstance(built, SmartBackendServices)
    assert (built.client_id, built.key_id, built.algorithm) == (
        "fhir-bridge-epic-like-8093",
        key.key_id,
        "ES384",
    )
    assert built.scope.split() == profile_scopes("epic-like")
