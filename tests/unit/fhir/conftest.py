"""Fixtures for the FHIR client tests (async tests run on anyio's pytest plugin)."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.unit.fhir.auth_fakes import KeyPair, pem
from tests.unit.fhir.fakes import FakeTime


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture(scope="session")
def rsa_key() -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return KeyPair("RS384", pem(key), key.public_key())


@pytest.fixture(scope="session")
def ec_key() -> KeyPair:
    key = ec.generate_private_key(ec.SECP384R1())
    return KeyPair("ES384", pem(key), key.public_key())


@pytest.fixture(params=["RS384", "ES384"])
def key(request: pytest.FixtureRequest, rsa_key: KeyPair, ec_key: KeyPair) -> KeyPair:
    return rsa_key if request.param == "RS384" else ec_key


@pytest.fixture
def now() -> FakeTime:
    """Fake time starting at the real time."""
    return FakeTime(now=float(int(time.time())))
