"""make_auth builds each kind of auth from connection settings; no kind shows a secret."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from fhir_bridge.errors import AuthError, FhirStatusError, InputError
from fhir_bridge.fhir import BearerToken, ClientCredentials, SmartBackendServices, make_auth
from tests.unit.fhir.auth_fakes import (
    CLIENT_ID,
    SCOPE,
    SECRET,
    TOKEN_URL,
    AuthServer,
    KeyPair,
    client,
    smart,
)
from tests.unit.fhir.fakes import BASE, FakeTime

pytestmark = pytest.mark.anyio


def test_make_auth_from_connection_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ec_key: KeyPair
) -> None:
    """Each auth kind of [connections.NAME.auth] builds the matching httpx.Auth."""
    key_file = tmp_path / "bridge.pem"
    key_file.write_text(ec_key.private_pem)
    monkeypatch.setenv("CC_SECRET", SECRET)
    assert make_auth("none", base_url=BASE) is None
    monkeypatch.setenv("TOK", "t")
    assert isinstance(make_auth("bearer", base_url=BASE, token_env="TOK"), BearerToken)
    cc = make_auth(
        "client-credentials",
        base_url=BASE,
        token_url=TOKEN_URL,
        client_id=CLIENT_ID,
        client_secret_env="CC_SECRET",
    )
    assert isinstance(cc, ClientCredentials)
    sb = make_auth(
        "smart-backend",
        base_url=BASE,
        client_id=CLIENT_ID,
        private_key_file=key_file,
        key_id="k1",
        algorithm="ES384",
        scope=SCOPE,
    )
    assert isinstance(sb, SmartBackendServices)
    assert sb.fhir_base_url == BASE
    with pytest.raises(InputError, match="required"):
        make_auth("smart-backend", base_url=BASE, client_id=CLIENT_ID, key_id="k", scope="s")


# --- secrets stay secret ----------------------------------------------------------------------


async def test_no_secret_in_repr_str_errors_or_logs(
    rsa_key: KeyPair, now: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    """Keys, client secrets, assertions and tokens appear in no repr, message or log record."""
    caplog.set_level(logging.DEBUG, logger="fhir_bridge")
    server = AuthServer(rsa_key.public_key, "RS384", now, fhir_401s=100)
    sb = smart(rsa_key, now)
    async with client(server, sb) as fhir:
        with pytest.raises(FhirStatusError) as fhir_error:
            await fhir.read("Patient", "p1")

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "invalid_client"})

    cc = ClientCredentials(TOKEN_URL, CLIENT_ID, SECRET)
    async with client(refuse, cc) as fhir:
        with pytest.raises(AuthError) as auth_error:
            await fhir.read("Patient", "p1")
    bearer = BearerToken("static-token-value")

    key_body = rsa_key.private_pem.splitlines()[1]
    assertions = [f["client_assertion"] for f in server.token_forms]
    secrets = [key_body, SECRET, "static-token-value", *server.issued, *assertions]
    shown = [repr(sb), str(sb), repr(cc), str(cc), repr(bearer), str(bearer)]
    shown += [str(fhir_error.value), repr(fhir_error.value), str(auth_error.value)]
    shown += [caplog.text] + [repr(vars(r)) for r in caplog.records]
    assert server.issued  # tokens were really handed out
    assert caplog.records  # and something was logged
    for secret in secrets:
        for text in shown:
            assert secret not in text
    assert "<secret>" in repr(sb)
    assert "<secret>" in repr(vars(cc))
