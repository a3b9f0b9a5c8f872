"""The sandbox as a SMART resource server: bearer tokens checked against the issuer's keys.

A sandbox on ``$FHIR_BRIDGE_TEST_SMART_PORT`` (8092) runs the epic-like profile with SMART on,
trusting an issuer played by this module: a tiny HTTP server on 127.0.0.1 serving a JWKS of keys
made here. Tokens are minted here too (RS384 and ES384, as SMART Backend Services ask), so every
check of the server can be tried: no token, expired, bad signature, unknown key, wrong issuer,
missing scope, and scopes judged entry by entry in a batch.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from fhir_bridge import sandbox
from tests.integration.conftest import profile_sandbox

pytestmark = pytest.mark.integration

SMART_PORT_ENV = "FHIR_BRIDGE_TEST_SMART_PORT"
RUN = uuid.uuid4().hex[:12]
SYSTEM = "urn:fhir-bridge:test:smart"
FHIR_JSON = "application/fhir+json"
ALL_SCOPES = "system/*.cruds"

Resource = dict[str, Any]


@dataclass
class Issuer:
    """The authorization server's side: its keys, published as a JWKS, and tokens it signs."""

    url: str = ""
    keys: dict[str, tuple[str, Any]] = field(default_factory=dict)
    """kid -> (alg, private key)."""
    published: list[str] = field(default_factory=list)
    """The kids the JWKS lists."""

    def add_key(self, kid: str, alg: str, *, publish: bool = True) -> None:
        key: Any = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if alg.startswith("RS")
            else ec.generate_private_key(ec.SECP384R1())
        )
        self.keys[kid] = (alg, key)
        if publish:
            self.published.append(kid)

    def jwks(self) -> Resource:
        keys = []
        for kid in self.published:
            alg, key = self.keys[kid]
            to_jwk = RSAAlgorithm.to_jwk if alg.startswith("RS") else ECAlgorithm.to_jwk
            jwk = to_jwk(key.public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
        return {"keys": keys}

    def token(
        self,
        scope: str = ALL_SCOPES,
        *,
        kid: str = "rs",
        issuer: str | None = None,
        lifetime: int = 300,
        signing_key: Any = None,
    ) -> str:
        alg, key = self.keys[kid]
        now = int(time.time())
        claims = {
            "iss": issuer or self.url,
            "sub": "fhir-bridge-test",
            "azp": "fhir-bridge-test",
            "iat": now - 10,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
            "scope": scope,
        }
        return jwt.encode(
            claims, signing_key or key, algorithm=alg, headers={"kid": kid, "typ": "JWT"}
        )


def _serve(issuer: Issuer) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/jwks":
                self.send_error(404)
                return
            body = json.dumps(issuer.jwks()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    found = Issuer()
    found.add_key("rs", "RS384")
    found.add_key("es", "ES384")
    server = _serve(found)
    found.url = f"http://127.0.0.1:{server.server_address[1]}/realms/test"
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def smart_server(issuer: Issuer) -> sandbox.SmartServer:
    root = issuer.url.removesuffix("/realms/test")
    return sandbox.SmartServer(
        issuer=issuer.url, jwks_url=f"{root}/jwks", token_url=f"{root}/token"
    )


@pytest.fixture(scope="module")
def smart_url(using_local_sandbox: bool, smart_server: sandbox.SmartServer) -> Iterator[str]:
    if not using_local_sandbox:
        pytest.skip("FHIR_BRIDGE_TEST_FHIR_URL is set: the SMART tests start a server of their own")
    port = int(os.environ.get(SMART_PORT_ENV, "8092"))
    yield from profile_sandbox(port, "epic-like", smart=smart_server)


@pytest.fixture(scope="module")
def fhir(smart_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=smart_url,
        headers={"Accept": FHIR_JSON, "Content-Type": FHIR_JSON},
        timeout=httpx.Timeout(60.0, connect=10.0),
    ) as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _diagnostics(response: httpx.Response) -> str:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return " ".join(str(issue.get("diagnostics", "")) for issue in body["issue"])


def _patient(label: str) -> Resource:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": SYSTEM, "value": f"{RUN}-{label}"}],
        "active": True,
    }


def test_metadata_and_discovery_need_no_token(
    fhir: httpx.Client, smart_server: sandbox.SmartServer
) -> None:
    metadata = fhir.get("/metadata")
    assert metadata.status_code == 200
    security = metadata.json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    uris = next(
        e for e in security["extension"] if e["url"].endswith("/StructureDefinition/oauth-uris")
    )
    assert {"url": "token", "valueUri": smart_server.token_url} in uris["extension"]

    discovery = fhir.get("/.well-known/smart-configuration", headers={"Accept": "application/json"})
    assert discovery.status_code == 200, discovery.text
    config = discovery.json()
    assert config["token_endpoint"] == smart_server.token_url
    assert config["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert {"RS384", "ES384"} <= set(config["token_endpoint_auth_signing_alg_values_supported"])
    assert "client_credentials" in config["grant_types_supported"]
    assert "client-confidential-asymmetric" in config["capabilities"]


def test_no_token_is_401_with_a_bearer_challenge(fhir: httpx.Client) -> None:
    response = fhir.get("/Patient")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert "access token is required" in _diagnostics(response)
    basic = fhir.get("/Patient", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401
    assert "Bearer" in _diagnostics(basic)


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("expired", "Expired JWT"),
        ("wrong signature", "Signed JWT rejected"),
        ("unknown key", "Signed JWT rejected"),
        ("wrong issuer", "iss"),
        ("not a JWT", "not a JWT"),
    ],
)
def test_invalid_tokens_are_401(fhir: httpx.Client, issuer: Issuer, case: str, words: str) -> None:
    if case == "expired":
        token = issuer.token(lifetime=-120)
    elif case == "wrong signature":  # the right kid, another key
        token = issuer.token(
            signing_key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )
    elif case == "unknown key":
        issuer.add_key("unpublished", "RS384", publish=False)
        token = issuer.token(kid="unpublished")
    elif case == "wrong issuer":
        token = issuer.token(issuer="http://127.0.0.1:1/realms/other")
    else:
        token = "not-a-jwt"
    response = fhir.get("/Patient", headers=_bearer(token))
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert words in _diagnostics(response)


@pytest.mark.parametrize("kid", ["rs", "es"])
def test_rs384_and_es384_tokens_are_accepted(fhir: httpx.Client, issuer: Issuer, kid: str) -> None:
    token = issuer.token("system/Patient.cruds", kid=kid)
    created = fhir.post("/Patient", json=_patient(f"alg-{kid}"), headers=_bearer(token))
    assert created.status_code == 201, created.text
    found = fhir.get(
        "/Patient", params={"identifier": f"{SYSTEM}|{RUN}-alg-{kid}"}, headers=_bearer(token)
    )
    assert found.status_code == 200
    assert found.json()["total"] == 1


def test_a_key_published_later_is_fetched(fhir: httpx.Client, issuer: Issuer) -> None:
    assert fhir.get("/Patient", headers=_bearer(issuer.token())).status_code == 200
    issuer.add_key("rotated", "RS384")  # the server has cached the JWKS without it
    response = fhir.get("/Patient", headers=_bearer(issuer.token(kid="rotated")))
    assert response.status_code == 200, response.text


def test_missing_scope_is_403_naming_the_scope(fhir: httpx.Client, issuer: Issuer) -> None:
    patients_only = _bearer(issuer.token("system/Patient.rs"))
    search = fhir.get("/Goal", headers=patients_only)
    assert search.status_code == 403
    assert "system/Goal.s" in _diagnostics(search)
    create = fhir.post("/Patient", json=_patient("no-c"), headers=patients_only)
    assert create.status_code == 403
    assert "system/Patient.c" in _diagnostics(create)

    v1_read = _bearer(issuer.token("system/*.read"))
    assert fhir.get("/Goal", headers=v1_read).status_code == 200
    write = fhir.post("/Patient", json=_patient("v1-read"), headers=v1_read)
    assert write.status_code == 403
    assert "system/Patient.write" in _diagnostics(write)
    v1_write = _bearer(issuer.token("system/Patient.read system/Patient.write"))
    assert fhir.post("/Patient", json=_patient("v1-write"), headers=v1_write).status_code == 201


def test_batch_entries_are_judged_one_by_one(fhir: httpx.Client, issuer: Issuer) -> None:
    token = issuer.token("system/Patient.cruds")
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": _patient("batch-ok"), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": "Task?status=requested"}},
        ],
    }
    response = fhir.post("", json=bundle, headers=_bearer(token))
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert entries[0]["response"]["status"].startswith("201")
    assert entries[1]["response"]["status"].startswith("403")
    outcome = entries[1]["response"]["outcome"]
    assert "system/Task.s" in outcome["issue"][0]["diagnostics"]


def test_authorization_comes_before_the_profile(fhir: httpx.Client, issuer: Issuer) -> None:
    goal = {
        "resourceType": "Goal",
        "lifecycleStatus": "active",
        "description": {"text": "smart"},
        "subject": {"reference": "Patient/none"},
    }
    assert fhir.post("/Goal", json=goal).status_code == 401
    assert (
        fhir.post("/Goal", json=goal, headers=_bearer(issuer.token("system/Goal.rs"))).status_code
        == 403
    )
    refused = fhir.post("/Goal", json=goal, headers=_bearer(issuer.token()))
    assert refused.status_code == 405
    assert "read-only" in _diagnostics(refused)


def test_a_transaction_is_judged_whole_before_anything_is_done(
    fhir: httpx.Client, issuer: Issuer
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": _patient("tx"), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": "Task?status=requested"}},
        ],
    }
    token = _bearer(issuer.token("system/Patient.cruds"))
    refused = fhir.post("", json=bundle, headers=token)
    assert refused.status_code == 403
    assert "system/Task.s" in _diagnostics(refused)
    found = fhir.get("/Patient", params={"identifier": f"{SYSTEM}|{RUN}-tx"}, headers=token)
    assert found.json()["total"] == 0
