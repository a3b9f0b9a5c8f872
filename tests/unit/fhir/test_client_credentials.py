"""OAuth client credentials: client_secret_basic and client_secret_post."""

from __future__ import annotations

import base64

import pytest

from fhir_bridge.fhir import ClientCredentials
from tests.unit.fhir.auth_fakes import CLIENT_ID, SCOPE, SECRET, TOKEN_URL, SecretServer, client

pytestmark = pytest.mark.anyio


async def test_client_secret_basic() -> None:
    """client_secret_basic: id and secret form-encoded then base64 in Authorization."""
    server = SecretServer(basic=True)
    auth = ClientCredentials(TOKEN_URL, "bridge client", "p@ss:word", SCOPE)
    async with client(server, auth) as fhir:
        await fhir.read("Patient", "p1")
    expected = base64.b64encode(b"bridge%20client:p%40ss%3Aword").decode()
    assert server.authorizations == [f"Basic {expected}"]
    assert server.forms == [{"grant_type": "client_credentials", "scope": SCOPE}]


async def test_client_secret_post() -> None:
    """client_secret_post: id and secret in the form, no Authorization header."""
    server = SecretServer(basic=False)
    auth = ClientCredentials(TOKEN_URL, CLIENT_ID, SECRET, method="client_secret_post")
    async with client(server, auth) as fhir:
        await fhir.read("Patient", "p1")
    assert server.authorizations == [None]
    assert server.forms[0]["client_secret"] == SECRET
    assert server.forms[0]["client_id"] == CLIENT_ID
