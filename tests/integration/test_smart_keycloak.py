"""The bridge's SMART Backend Services client against a real authorization server (Keycloak):
tokens for RS384 and ES384 client assertions, and the refusals a real server gives (wrong
key, expired assertion, replayed jti, a scope the client may not have), each an AuthError
naming the connection; a short-lived token renewed between requests."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Literal

import httpx
import jwt
import pytest

from fhir_bridge import sandbox
from fhir_bridge.errors import AuthError
from fhir_bridge.fhir import SmartBackendServices
from tests.integration.smart import READ_SCOPES, SmartClient, register

pytestmark = pytest.mark.anyio

CONNECTION = "county-hospital"


def verified(admin: sandbox.KeycloakAdmin, token: str, at: float | None = None) -> dict[str, Any]:
    """The claims of an access token, after checking its signature against the realm's JWKS,
    its issuer, and that it had not expired at ``at`` (now when not given)."""
    keys = jwt.PyJWKClient(admin.urls.jwks_url)
    signing = keys.get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token,
        signing.key,
        algorithms=["RS256"],
        issuer=admin.urls.issuer,
        options={"verify_aud": False, "verify_exp": False, "require": ["exp", "iat", "iss"]},
    )
    assert claims["exp"] > (time.time() if at is None else at)
    return claims


async def bearer_sent(auth: httpx.Auth, url: str) -> str:
    """The access token the auth put on a real request to ``url``."""
    async with httpx.AsyncClient(auth=auth, timeout=60.0) as client:
        response = await client.get(f"{url}/metadata", headers={"Accept": "application/fhir+json"})
    assert response.status_code == 200
    header = response.request.headers["Authorization"]
    assert header.startswith("Bearer ")
    return header.removeprefix("Bearer ")


@pytest.mark.parametrize("algorithm", ["RS384", "ES384"])
async def test_a_signed_assertion_gets_a_token_holding_the_scopes_asked_for(
    keycloak: sandbox.KeycloakAdmin,
    fhir_base_url: str,
    tmp_path: Path,
    algorithm: Literal["RS384", "ES384"],
) -> None:
    client = register(keycloak, tmp_path, algorithm)
    token = await bearer_sent(client.auth(), fhir_base_url)
    claims = verified(keycloak, token)
    assert claims["azp"] == client.registered.client_id
    assert set(claims["scope"].split()) == set(READ_SCOPES)


async def test_a_token_holds_only_the_scopes_asked_for(
    keycloak: sandbox.KeycloakAdmin, fhir_base_url: str, tmp_path: Path
) -> None:
    """A connection configured with fewer scopes than its client may have gets a token with
    just those (a FHIR server then answers 403 to what needs the others)."""
    client = register(keycloak, tmp_path, "ES384", ("system/Goal.rs", "system/Task.cruds"))
    claims = verified(keycloak, await bearer_sent(client.auth("system/Goal.rs"), fhir_base_url))
    assert claims["scope"].split() == ["system/Goal.rs"]


async def test_a_scope_the_client_may_not_have_is_refused_naming_the_connection(
    keycloak: sandbox.KeycloakAdmin, fhir_base_url: str, tmp_path: Path
) -> None:
    """Asking for a scope the client is not registered for: Keycloak refuses the token
    (invalid_scope) rather than leaving the scope out."""
    client = register(keycloak, tmp_path, "ES384", ("system/Goal.rs",))
    auth = client.auth(scope="system/Goal.rs system/Task.cruds", connection=CONNECTION)
    with pytest.raises(AuthError) as caught:
        await bearer_sent(auth, fhir_base_url)
    error = caught.value
    assert (error.status, error.error, error.connection) == (400, "invalid_scope", CONNECTION)
    assert str(error).startswith(
        f"connection {CONNECTION!r}: token endpoint refused the request (HTTP 400) (invalid_scope"
    )


async def test_an_assertion_signed_with_another_key_is_refused_naming_the_connection(
    keycloak: sandbox.KeycloakAdmin, fhir_base_url: str, tmp_path: Path
) -> None:
    client = register(keycloak, tmp_path, "RS384")
    stranger = sandbox.generate_key_pair("RS384")
    auth = SmartBackendServices(
        client_id=client.registered.client_id,
        private_key_pem=stranger.private_pem,
        key_id=client.key.key_id,  # the registered kid, the wrong key
        scope=client.scope,
        token_url=client.registered.token_url,
        connection=CONNECTION,
    )
    with pytest.raises(AuthError) as caught:
        await bearer_sent(auth, fhir_base_url)
    error = caught.value
    assert (error.status, error.error, error.connection) == (400, "invalid_client", CONNECTION)
    assert str(error).startswith(f"connection {CONNECTION!r}: token endpoint refused")
    assert error.permanent


async def test_an_expired_assertion_is_refused(
    keycloak: sandbox.KeycloakAdmin, fhir_base_url: str, tmp_path: Path
) -> None:
    """An assertion whose exp has passed (a clock ten minutes behind) is refused."""
    client = register(keycloak, tmp_path, "ES384")
    auth = client.auth(clock=lambda: time.time() - 600, connection=CONNECTION)
    with pytest.raises(AuthError) as caught:
        await bearer_sent(auth, fhir_base_url)
    assert (caught.value.status, caught.value.error) == (400, "invalid_client")
    assert caught.value.connection == CONNECTION


async def test_the_audience_is_the_token_url_and_another_one_is_refused(
    keycloak: sandbox.KeycloakAdmin, tmp_path: Path
) -> None:
    """The bridge's aud (the token URL) is accepted, as is the realm issuer; any other
    audience is refused."""
    client = register(keycloak, tmp_path, "RS384")
    auth = client.auth()
    answers = {}
    for audience in (client.registered.token_url, keycloak.urls.issuer, "http://x.test/token"):
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": auth.client_assertion(audience),
            "scope": client.scope,
        }
        async with httpx.AsyncClient(timeout=60.0) as http:
            response = await http.post(client.registered.token_url, data=form)
        answers[audience] = (response.status_code, response.json().get("error_description"))
    assert answers[client.registered.token_url][0] == 200
    assert answers[keycloak.urls.issuer][0] == 200
    assert answers["http://x.test/token"] == (400, "Invalid token audience")


class ReplayingAuth(SmartBackendServices):
    """Sends its first client assertion again every time: what a replay looks like."""

    first: str | None = None

    def client_assertion(self, audience: str) -> str:
        if self.first is None:
            self.first = super().client_assertion(audience)
        return self.first


async def test_a_replayed_jti_is_refused_by_the_server(
    keycloak: sandbox.KeycloakAdmin, fhir_base_url: str, tmp_path: Path
) -> None:
    """Keycloak remembers the jti of each assertion: the same assertion twice is refused
    (and the bridge's own client never sends one twice: a fresh jti each time)."""
    client = register(keycloak, tmp_path, "RS384", token_lifespan=2)
    replaying = ReplayingAuth(
        client_id=client.registered.client_id,
        private_key_pem=client.key.private_pem,
        key_id=client.key.key_id,
        scope=client.scope,
        token_url=client.registered.token_url,
        connection=CONNECTION,
    )
    await bearer_sent(replaying, fhir_base_url)
    await asyncio.sleep(1.5)  # past the token's renewal time: a second assertion is sent
    with pytest.raises(AuthError) as caught:
        await bearer_sent(replaying, fhir_base_url)
    assert (caught.value.error, caught.value.description) == (
        "invalid_client",
        "Token reuse detected",
    )

    honest = client.auth()
    first = await bearer_sent(honest, fhir_base_url)
    await asyncio.sleep(1.5)
    assert await bearer_sent(honest, fhir_base_url) != first


async def test_a_short_lived_token_is_renewed_between_requests(
    keycloak: sandbox.KeycloakAdmin, fhir_base_url: str, tmp_path: Path
) -> None:
    """Tokens living 6 s (renewed after 3 s): over 10 s of requests the client asks for new
    ones before the old expire, and every token it sends is valid when sent."""
    client: SmartClient = register(keycloak, tmp_path, "ES384", token_lifespan=6)
    auth = client.auth()
    seen: list[str] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        sent_at = time.time()
        token = await bearer_sent(auth, fhir_base_url)
        verified(keycloak, token, at=sent_at)
        seen.append(token)
        await asyncio.sleep(1.0)
    assert len(set(seen)) >= 3
