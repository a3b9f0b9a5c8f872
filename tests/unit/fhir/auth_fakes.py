"""Fakes for the auth tests: key pairs, a SMART authorisation server that verifies client
assertions, a client-credentials token endpoint, and clients wired to them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from fhir_bridge.fhir import FhirClient, SmartBackendServices
from tests.unit.fhir.fakes import BASE, PATIENT, FakeTime, fhir_json

TOKEN_URL = "https://auth.test/oauth2/token"
SMART_CONFIG = f"{BASE}/.well-known/smart-configuration"
CLIENT_ID = "bridge-client"
SCOPE = "system/CarePlan.rs system/Goal.cruds"
SECRET = "s3cr3t-client-value"


@dataclass(frozen=True)
class KeyPair:
    algorithm: str
    private_pem: str
    public_key: Any


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


@dataclass
class AuthServer:
    """A SMART authorisation server plus FHIR endpoint that verifies client assertions with
    the registered public key, and a FHIR server that accepts only its current token."""

    public_key: Any
    algorithm: str
    time: FakeTime
    kid: str = "key-1"
    expires_in: int = 300
    signing_algs: list[str] | None = None
    fhir_401s: int = 0  # how many FHIR requests to refuse with 401 (then accept)
    discovery_requests: int = 0
    token_forms: list[dict[str, str]] = field(default_factory=list)
    assertion_headers: list[dict[str, Any]] = field(default_factory=list)
    assertion_claims: list[dict[str, Any]] = field(default_factory=list)
    fhir_auth: list[str | None] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if url == SMART_CONFIG:
            self.discovery_requests += 1
            return httpx.Response(
                200,
                json={
                    "token_endpoint": TOKEN_URL,
                    "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                    "token_endpoint_auth_signing_alg_values_supported": self.signing_algs
                    or ["RS384", "ES384"],
                    "capabilities": ["client-confidential-asymmetric"],
                },
            )
        if url == TOKEN_URL:
            return self._token(request)
        return self._fhir(request)

    def _token(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert "Authorization" not in request.headers
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        self.token_forms.append(form)
        assertion = form.get("client_assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(
                assertion,
                self.public_key,
                algorithms=[self.algorithm],
                audience=TOKEN_URL,
                # times are checked below against the test's clock, not the real one
                options={
                    "require": ["iss", "sub", "aud", "exp", "jti"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError:
            return httpx.Response(401, json={"error": "invalid_client"})
        if not self.time.now < claims["exp"] <= self.time.now + 300:
            return httpx.Response(401, json={"error": "invalid_client"})
        if any(c["jti"] == claims["jti"] for c in self.assertion_claims):
            return httpx.Response(401, json={"error": "invalid_client"})  # replayed
        self.assertion_headers.append(header)
        self.assertion_claims.append(claims)
        token = f"access-token-{len(self.issued) + 1}"
        self.issued.append(token)
        return httpx.Response(
            200,
            json={
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.expires_in,
                "scope": form.get("scope"),
            },
        )

    def _fhir(self, request: httpx.Request) -> httpx.Response:
        given = request.headers.get("Authorization")
        self.fhir_auth.append(given)
        if self.fhir_401s > 0:
            self.fhir_401s -= 1
            return httpx.Response(401)
        if not self.issued or given != f"Bearer {self.issued[-1]}":
            return httpx.Response(401)
        return fhir_json(PATIENT)

    @property
    def token_requests(self) -> int:
        return len(self.token_forms)


def smart(key: KeyPair, clock: FakeTime, **kwargs: Any) -> SmartBackendServices:
    kwargs.setdefault("fhir_base_url", BASE)
    return SmartBackendServices(
        client_id=CLIENT_ID,
        private_key_pem=key.private_pem,
        key_id="key-1",
        scope=SCOPE,
        algorithm=key.algorithm,  # type: ignore[arg-type]
        clock=clock.clock,
        **kwargs,
    )


def client(server: Any, auth: httpx.Auth) -> FhirClient:
    return FhirClient(BASE, auth=auth, transport=httpx.MockTransport(server))


@dataclass
class SecretServer:
    basic: bool
    forms: list[dict[str, str]] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            self.forms.append({k: v[0] for k, v in parse_qs(request.content.decode()).items()})
            self.authorizations.append(request.headers.get("Authorization"))
            return httpx.Response(200, json={"access_token": "cc-token", "expires_in": 3600})
        assert request.headers["Authorization"] == "Bearer cc-token"
        return fhir_json(PATIENT)
