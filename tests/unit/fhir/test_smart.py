"""SMART Backend Services: assertions checked by a verifying token endpoint, discovery, keys."""

from __future__ import annotations

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from fhir_bridge.errors import AuthError, InputError
from fhir_bridge.fhir import FhirClient, SmartBackendServices
from tests.unit.fhir.auth_fakes import (
    CLIENT_ID,
    SCOPE,
    TOKEN_URL,
    AuthServer,
    KeyPair,
    client,
    smart,
)
from tests.unit.fhir.fakes import BASE, FakeTime

pytestmark = pytest.mark.anyio


async def test_smart_client_assertion_is_verified_by_the_token_endpoint(
    key: KeyPair, now: FakeTime
) -> None:
    """The assertion verifies with the registered public key; header and claims are as SMART
    requires, and the form carries grant type, assertion type and scope."""
    server = AuthServer(key.public_key, key.algorithm, now)
    async with client(server, smart(key, now)) as fhir:
        await fhir.read("Patient", "p1")
    [form] = server.token_forms
    assert form["grant_type"] == "client_credentials"
    assert form["client_assertion_type"] == (
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    )
    assert form["scope"] == SCOPE
    [header] = server.assertion_headers
    assert header == {"alg": key.algorithm, "kid": "key-1", "typ": "JWT"}
    [claims] = server.assertion_claims
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert claims["aud"] == TOKEN_URL
    assert now.now < claims["exp"] <= now.now + 300
    assert server.fhir_auth == ["Bearer access-token-1"]


async def test_jku_goes_in_the_header_when_given(rsa_key: KeyPair, now: FakeTime) -> None:
    """A jku (JWKS URL) is added to the assertion header."""
    server = AuthServer(rsa_key.public_key, "RS384", now)
    auth = smart(rsa_key, now, jku="https://bridge.test/.well-known/jwks.json")
    async with client(server, auth) as fhir:
        await fhir.read("Patient", "p1")
    assert server.assertion_headers[0]["jku"] == "https://bridge.test/.well-known/jwks.json"


async def test_token_url_given_skips_discovery(rsa_key: KeyPair, now: FakeTime) -> None:
    """With token_url there is no smart-configuration request."""
    server = AuthServer(rsa_key.public_key, "RS384", now)
    auth = smart(rsa_key, now, fhir_base_url=None, token_url=TOKEN_URL)
    async with client(server, auth) as fhir:
        await fhir.read("Patient", "p1")
    assert server.discovery_requests == 0


async def test_unregistered_key_is_refused_as_auth_error(rsa_key: KeyPair, now: FakeTime) -> None:
    """An assertion signed with a key the server does not know: AuthError, OAuth code kept."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server = AuthServer(other.public_key(), "RS384", now)
    async with client(server, smart(rsa_key, now)) as fhir:
        with pytest.raises(AuthError) as caught:
            await fhir.read("Patient", "p1")
    assert (caught.value.status, caught.value.error) == (401, "invalid_client")
    assert str(caught.value) == "token endpoint refused the request (HTTP 401) (invalid_client)"
    assert server.fhir_auth == []


async def test_discovery_without_our_algorithm_is_an_auth_error(
    rsa_key: KeyPair, now: FakeTime
) -> None:
    """A server that accepts only ES384 assertions is told apart before signing RS384."""
    server = AuthServer(rsa_key.public_key, "RS384", now, signing_algs=["ES384"])
    async with client(server, smart(rsa_key, now)) as fhir:
        with pytest.raises(AuthError, match="RS384"):
            await fhir.read("Patient", "p1")
    assert server.token_requests == 0


async def test_failed_discovery_is_an_auth_error(rsa_key: KeyPair, now: FakeTime) -> None:
    """No smart-configuration (404): AuthError with the status."""
    transport = httpx.MockTransport(lambda r: httpx.Response(404))
    async with FhirClient(BASE, auth=smart(rsa_key, now), transport=transport) as fhir:
        with pytest.raises(AuthError) as caught:
            await fhir.read("Patient", "p1")
    assert caught.value.status == 404


def test_key_must_fit_the_algorithm(rsa_key: KeyPair, ec_key: KeyPair) -> None:
    """An EC key for RS384 (or the reverse) and non-PEM text are InputErrors showing no key."""
    with pytest.raises(InputError, match="RS384"):
        SmartBackendServices(
            client_id="c",
            private_key_pem=ec_key.private_pem,
            key_id="k",
            scope="s",
            token_url=TOKEN_URL,
        )
    with pytest.raises(InputError) as caught:
        SmartBackendServices(
            client_id="c",
            private_key_pem="not a key",
            key_id="k",
            scope="s",
            algorithm="ES384",
            token_url=TOKEN_URL,
        )
    assert "not a key" not in str(caught.value)


def test_assertion_lifetime_is_at_most_five_minutes(rsa_key: KeyPair) -> None:
    """exp more than 300 s ahead is refused at construction."""
    with pytest.raises(ValueError, match="300"):
        SmartBackendServices(
            client_id="c",
            private_key_pem=rsa_key.private_pem,
            key_id="k",
            scope="s",
            token_url=TOKEN_URL,
            assertion_lifetime=301,
        )
