"""The bridge against SMART-protected profile sandboxes (HAPI checking tokens Keycloak issued):
no token 401, a missing scope 403, push and pull with the scopes ``sandbox start --profile``
registers, tokens renewed mid-run, and a refused scope leaving the outbox as it was."""

from __future__ import annotations

import asyncio
import logging
import stat
import subprocess
import sys
import time
import tomllib
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_bridge import model as m
from fhir_bridge import sandbox
from fhir_bridge.config import ConnectionConfig, Settings
from fhir_bridge.documents import read_records
from fhir_bridge.errors import AccessDenied, AuthError
from fhir_bridge.fhir import SmartBackendServices
from fhir_bridge.store import Store
from fhir_bridge.sync import Connection, PullSummary, PushSummary, pull_connection, push_connection
from tests.helpers import FIXTURES
from tests.integration.conftest import SmartSandbox
from tests.integration.smart import register

CONNECTION = "epic-smart"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _records() -> list[m.Record]:
    return read_records(FIXTURES / "sdoh-food-transportation.json")


def _settings(tmp_path: Path, target: SmartSandbox, **auth: Any) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'bridge.db'}",
        namespace=f"https://bridge.test/{uuid.uuid4().hex[:10]}",
        connections={
            CONNECTION: ConnectionConfig(
                base_url=target.base_url, auth=target.auth_config(**auth), enrol="all"
            )
        },
    )


def _loaded(settings: Settings) -> Store:
    store = Store(settings.database_url)
    store.put_records(_records(), [CONNECTION], NOW)
    return store


def _push(store: Store, settings: Settings) -> PushSummary:
    target = Connection(CONNECTION, settings.connections[CONNECTION])
    return asyncio.run(push_connection(store, target, settings))


def _pull(store: Store, settings: Settings) -> PullSummary:
    target = Connection(CONNECTION, settings.connections[CONNECTION])
    return asyncio.run(pull_connection(store, target, settings))


def _token(target: SmartSandbox, scope: str) -> str:
    """An access token for the sandbox's own client, asked for ``scope`` only."""
    auth = target.auth_config(scope=scope)
    response = httpx.post(
        auth.token_url or "",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": _assertion(target, auth.token_url or ""),
            "scope": scope,
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _assertion(target: SmartSandbox, audience: str) -> str:
    s = target.setup
    return SmartBackendServices(
        client_id=s.client_id,
        private_key_pem=s.key_file.read_bytes(),
        key_id=s.key_id,
        scope=" ".join(s.scopes),
        algorithm=s.algorithm,
        token_url=audience,
    ).client_assertion(audience)


@pytest.mark.parametrize("fixture", ["epic_like", "oracle_like"])
def test_no_token_is_401_and_a_missing_scope_is_403(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    target: SmartSandbox = request.getfixturevalue(fixture)
    anonymous = httpx.get(f"{target.base_url}/Patient", timeout=60.0)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")

    token = _token(target, "system/Patient.cruds")
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
    allowed = httpx.get(f"{target.base_url}/Patient?_count=1", headers=headers, timeout=60.0)
    assert allowed.status_code == 200
    refused = httpx.get(f"{target.base_url}/ServiceRequest", headers=headers, timeout=60.0)
    assert refused.status_code == 403


def test_sandbox_start_prints_the_token_url_and_writes_a_ready_connection_block(
    epic_like: SmartSandbox, tmp_path: Path
) -> None:
    """`fhir-bridge sandbox start --profile epic-like` on the running sandbox: base URL and
    token URL on stdout, the block on stderr and in the state directory, and the bridge,
    configured by that file alone, pushes."""
    port = epic_like.base_url.split(":")[2].split("/")[0]
    cli = str(Path(sys.executable).parent / "fhir-bridge")
    done = subprocess.run(
        [cli, "sandbox", "start", "--profile", "epic-like", "--port", port],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        epic_like.base_url,
        epic_like.setup.auth_server.token_url,
    ]
    config = epic_like.setup.config_file
    assert config.read_text() in done.stderr
    assert stat.S_IMODE(epic_like.setup.key_file.stat().st_mode) == 0o600
    written = tomllib.loads(config.read_text())
    name = "sandbox-epic-like"
    written["connections"][name]["enrol"] = "all"  # every patient's records, not just enrolled
    settings = Settings(
        **written,
        database_url=f"sqlite:///{tmp_path}/b.db",
        namespace=f"https://bridge.test/{uuid.uuid4().hex[:10]}",
    )
    store = Store(settings.database_url)
    store.put_records(_records(), [name], NOW)
    pushed = asyncio.run(
        push_connection(store, Connection(name, settings.connections[name]), settings)
    )
    assert pushed.created > 0
    assert pushed.failed == 0


def test_the_smart_configuration_names_keycloaks_token_endpoint(
    epic_like: SmartSandbox,
) -> None:
    """Discovery (no token needed) points at the real authorization server, so a connection
    without token_url finds it."""
    found = httpx.get(f"{epic_like.base_url}/.well-known/smart-configuration").json()
    assert found["token_endpoint"] == epic_like.setup.auth_server.token_url


def test_push_and_pull_with_the_profiles_scopes_and_token_discovery(
    epic_like: SmartSandbox, tmp_path: Path
) -> None:
    """The connection block `sandbox start --profile` writes (token URL left out: discovered)
    pushes what the profile lets it write, and pulls."""
    settings = _settings(tmp_path, epic_like, token_url=None)
    store = _loaded(settings)
    pushed = _push(store, settings)
    assert pushed.created > 0
    assert pushed.failed == 0
    pulled = _pull(store, settings)
    assert pulled.failed == 0


def test_a_missing_scope_stops_the_push_naming_the_connection_and_keeps_the_queue(
    epic_like: SmartSandbox, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, epic_like, scope="system/Patient.cruds system/Goal.rs")
    store = _loaded(settings)
    queued = len(store.outbox.due(CONNECTION, datetime.now(UTC)))
    with pytest.raises(AccessDenied) as caught:
        _push(store, settings)
    assert caught.value.status == 403
    assert caught.value.connection == CONNECTION
    assert str(caught.value).startswith(f"connection {CONNECTION!r}: scope missing")
    assert len(store.outbox.due(CONNECTION, datetime.now(UTC))) == queued
    assert store.outbox.dead_letters(CONNECTION) == []

    widened = _settings(tmp_path, epic_like)  # the scopes granted: the same queue goes
    again = _push(store, widened)
    assert again.failed == 0
    assert again.created > 0


def test_a_wrong_key_fails_the_push_naming_the_connection_and_loses_nothing(
    epic_like: SmartSandbox, tmp_path: Path
) -> None:
    stranger = sandbox.generate_key_pair("RS384").write_private(tmp_path / "stranger.pem")
    settings = _settings(tmp_path, epic_like, private_key_file=stranger)
    store = _loaded(settings)
    queued = len(store.outbox.due(CONNECTION, datetime.now(UTC)))
    with pytest.raises(AuthError) as caught:
        _push(store, settings)
    assert (caught.value.error, caught.value.connection) == ("invalid_client", CONNECTION)
    assert len(store.outbox.due(CONNECTION, datetime.now(UTC))) == queued
    assert store.outbox.dead_letters(CONNECTION) == []


def test_a_token_that_expires_mid_push_is_renewed_without_failing_the_run(
    epic_like: SmartSandbox,
    keycloak: sandbox.KeycloakAdmin,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Tokens living 6 s (the client renews them after 3 s), and a push in small bundles sent
    one at a time with a 4 s pause after the first: the later bundles need a new token, and get
    it without failing the run."""
    client = register(
        keycloak,
        tmp_path,
        "ES384",
        epic_like.setup.scopes,
        token_lifespan=6,
    )
    settings = _settings(
        tmp_path,
        epic_like,
        client_id=client.registered.client_id,
        private_key_file=client.key_file,
        key_id=client.key.key_id,
        algorithm="ES384",
    )
    # one small bundle at a time, so that the push has a "between" to pause in (packed, the
    # patient's writes would travel together)
    one_at_a_time = settings.connections[CONNECTION].model_copy(
        update={"bundle_size": 5, "max_in_flight": 1}
    )
    settings = settings.model_copy(update={"connections": {CONNECTION: one_at_a_time}})
    store = _loaded(settings)
    store.put_records(read_records(FIXTURES / "specialist-referral-ckd.json"), [CONNECTION], NOW)
    target = Connection(CONNECTION, settings.connections[CONNECTION])
    pauses: list[int] = []

    def between_patients(done: int, total: int) -> None:
        if done < total:
            pauses.append(done)
            time.sleep(4)  # the token fetched for the first patient is past its renewal

    with caplog.at_level(logging.INFO, logger="fhir_bridge.fhir"):
        pushed = asyncio.run(push_connection(store, target, settings, progress=between_patients))
    assert pauses  # there was a pause between the two patients
    assert pushed.failed == 0
    assert pushed.created > 0
    assert store.outbox.due(CONNECTION, datetime.now(UTC)) == []
    tokens = [r for r in caplog.records if getattr(r, "action", None) == "fhir.token"]
    assert len(tokens) >= 2
