"""The Keycloak admin calls: what a SMART client's registration asks Keycloak for."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from fhir_bridge.sandbox import KeycloakAdmin, SandboxError, generate_key_pair, system_scopes

BASE = "http://keycloak.test"


class FakeKeycloak:
    """Answers the admin API from memory and keeps what was posted."""

    def __init__(self) -> None:
        self.scopes: dict[str, str] = {}
        self.clients: dict[str, dict[str, Any]] = {}
        self.realms: set[str] = set()
        self.logins = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if path == "/realms/master/protocol/openid-connect/token":
            self.logins += 1
            return httpx.Response(200, json={"access_token": "admin", "expires_in": 60})
        assert request.headers["Authorization"] == "Bearer admin"
        body = json.loads(request.content) if request.content else None
        if path == "/admin/realms/fhir-bridge" and method == "GET":
            return httpx.Response(200 if "fhir-bridge" in self.realms else 404, json={})
        if path == "/admin/realms" and method == "POST":
            self.realms.add(body["realm"])
            return httpx.Response(201)
        if path.endswith("/client-scopes") and method == "GET":
            return httpx.Response(200, json=[{"name": n, "id": i} for n, i in self.scopes.items()])
        if path.endswith("/client-scopes") and method == "POST":
            self.scopes[body["name"]] = f"id-{len(self.scopes)}"
            return httpx.Response(201)
        if path.endswith("/clients") and method == "GET":
            wanted = request.url.params["clientId"]
            found = [c for c in self.clients.values() if c["clientId"] == wanted]
            return httpx.Response(200, json=found)
        if path.endswith("/clients") and method == "POST":
            self.clients[f"uuid-{len(self.clients)}"] = {**body, "id": f"uuid-{len(self.clients)}"}
            return httpx.Response(201)
        if "/optional-client-scopes" in path and method == "GET":
            internal = path.split("/")[-2]
            names = self.clients[internal]["optionalClientScopes"]
            return httpx.Response(200, json=[{"name": n} for n in names])
        if "/clients/" in path and method == "DELETE":
            self.clients.pop(path.rsplit("/", 1)[1])
            return httpx.Response(204)
        return httpx.Response(404, json={"error": "unknown"})


@pytest.fixture
def keycloak() -> FakeKeycloak:
    return FakeKeycloak()


def admin(fake: FakeKeycloak) -> KeycloakAdmin:
    return KeycloakAdmin(BASE, "admin", "pw", transport=httpx.MockTransport(fake))


def test_the_realm_gets_every_smart_system_scope_once(keycloak: FakeKeycloak) -> None:
    with admin(keycloak) as api:
        api.ensure_realm()
        api.ensure_realm()
    assert keycloak.realms == {"fhir-bridge"}
    assert sorted(keycloak.scopes) == sorted(system_scopes())
    assert {"system/Goal.rs", "system/Task.cruds", "system/*.rs"} <= set(keycloak.scopes)
    assert keycloak.logins == 1  # the admin token is reused while it lives


@pytest.mark.parametrize("algorithm", ["RS384", "ES384"])
def test_a_client_authenticates_with_a_signed_jwt_and_gets_its_scopes(
    keycloak: FakeKeycloak, algorithm: str
) -> None:
    key = generate_key_pair(algorithm)  # type: ignore[arg-type]
    with admin(keycloak) as api:
        done = api.register_client(
            "bridge", key.public_jwk, algorithm, ["system/Goal.rs"], token_lifespan=5
        )
    [client] = keycloak.clients.values()
    assert client["clientAuthenticatorType"] == "client-jwt"
    assert client["serviceAccountsEnabled"] is True
    assert client["publicClient"] is False
    assert client["standardFlowEnabled"] is False
    assert client["optionalClientScopes"] == ["system/Goal.rs"]
    attributes = client["attributes"]
    assert attributes["token.endpoint.auth.signing.alg"] == algorithm
    assert json.loads(attributes["jwks.string"]) == {"keys": [key.public_jwk]}
    assert attributes["access.token.lifespan"] == "5"
    assert done.token_url == f"{BASE}/realms/fhir-bridge/protocol/openid-connect/token"
    assert done.key_id == key.key_id


def test_registering_again_replaces_the_client(keycloak: FakeKeycloak) -> None:
    first, second = generate_key_pair("RS384"), generate_key_pair("RS384")
    with admin(keycloak) as api:
        api.register_client("bridge", first.public_jwk, "RS384", ["system/Goal.rs"])
        api.register_client("bridge", second.public_jwk, "RS384", ["system/Goal.rs"])
        assert api.has_client("bridge")
    [client] = keycloak.clients.values()
    assert json.loads(client["attributes"]["jwks.string"])["keys"][0]["kid"] == second.key_id


def test_only_rs384_and_es384_are_accepted(keycloak: FakeKeycloak) -> None:
    key = generate_key_pair("RS384")
    with admin(keycloak) as api, pytest.raises(SandboxError, match="RS384 or ES384"):
        api.register_client("bridge", key.public_jwk, "HS256", ["system/Goal.rs"])
    assert keycloak.clients == {}


def test_a_refused_admin_login_is_a_sandbox_error_without_the_password() -> None:
    refusing = httpx.MockTransport(lambda request: httpx.Response(401, json={}))
    api = KeycloakAdmin(BASE, "admin", "s3cret-pw", transport=refusing)
    with api, pytest.raises(SandboxError) as caught:
        api.ensure_realm()
    assert "HTTP 401" in caught.value.message
    assert "s3cret-pw" not in caught.value.message
