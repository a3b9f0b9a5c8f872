"""Token auth: one cached token, renewed after expiry and once on 401, shared when concurrent."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from fhir_bridge.errors import FhirStatusError
from tests.unit.fhir.auth_fakes import AuthServer, KeyPair, client, smart
from tests.unit.fhir.fakes import BASE, FakeTime

pytestmark = pytest.mark.anyio


async def test_token_is_cached_then_renewed_after_expiry(rsa_key: KeyPair, now: FakeTime) -> None:
    """Several calls share one token; once expires_in - 30 s passes a new one is fetched,
    with a new jti, and discovery is not repeated."""
    server = AuthServer(rsa_key.public_key, "RS384", now, expires_in=300)
    async with client(server, smart(rsa_key, now)) as fhir:
        for _ in range(3):
            await fhir.read("Patient", "p1")
        now.now += 260  # still within 300 - 30
        await fhir.read("Patient", "p1")
        assert server.token_requests == 1
        now.now += 20  # past 270 s
        await fhir.read("Patient", "p1")
    assert server.token_requests == 2
    assert server.discovery_requests == 1
    jtis = [c["jti"] for c in server.assertion_claims]
    assert len(set(jtis)) == 2
    assert server.fhir_auth[-1] == "Bearer access-token-2"


async def test_one_reauth_on_401(rsa_key: KeyPair, now: FakeTime) -> None:
    """A 401 from the FHIR server (token revoked) gets one new token and one resend."""
    server = AuthServer(rsa_key.public_key, "RS384", now, fhir_401s=1)
    async with client(server, smart(rsa_key, now)) as fhir:
        assert (await fhir.read("Patient", "p1"))["id"] == "p1"
    assert server.token_requests == 2
    assert server.fhir_auth == ["Bearer access-token-1", "Bearer access-token-2"]


async def test_repeated_401_does_not_loop(rsa_key: KeyPair, now: FakeTime) -> None:
    """If the new token is refused too, the 401 is raised: two tries, two tokens, no loop."""
    server = AuthServer(rsa_key.public_key, "RS384", now, fhir_401s=100)
    async with client(server, smart(rsa_key, now)) as fhir:
        with pytest.raises(FhirStatusError) as caught:
            await fhir.read("Patient", "p1")
    assert caught.value.status == 401
    assert len(server.fhir_auth) == 2
    assert server.token_requests == 2


async def test_concurrent_requests_share_one_token_fetch(rsa_key: KeyPair, now: FakeTime) -> None:
    """Ten reads started together cause one discovery and one token request."""
    server = AuthServer(rsa_key.public_key, "RS384", now)
    async with client(server, smart(rsa_key, now)) as fhir:
        await asyncio.gather(*(fhir.read("Patient", "p1") for _ in range(10)))
    assert server.token_requests == 1
    assert server.discovery_requests == 1


def test_sync_httpx_client_works_too(rsa_key: KeyPair, now: FakeTime) -> None:
    """The generator auth flow also serves a synchronous httpx.Client."""
    server = AuthServer(rsa_key.public_key, "RS384", now, fhir_401s=1)
    auth = smart(rsa_key, now)
    with httpx.Client(auth=auth, transport=httpx.MockTransport(server)) as http:
        assert http.get(f"{BASE}/Patient/p1").status_code == 200
    assert server.token_requests == 2
