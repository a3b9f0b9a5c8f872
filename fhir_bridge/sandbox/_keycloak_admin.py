"""Keycloak's admin REST API, as far as SMART Backend Services needs it: one realm, the SMART
v2 system scopes as client scopes, and confidential clients that authenticate with a signed
JWT (``private_key_jwt``) and get tokens through their service account.

    admin = KeycloakAdmin(server, credentials)
    admin.ensure_realm()
    admin.register_client("bridge-epic", key.public_jwk, "RS384", ["system/Goal.rs"])
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from ._error import SandboxError

REALM = "fhir-bridge"
"""The realm the sandbox's SMART clients live in."""
DEFAULT_TOKEN_LIFESPAN = 300
"""Seconds an access token lives (SMART's usual five minutes)."""

SMART_TYPES: tuple[str, ...] = (
    "Patient",
    "CarePlan",
    "Goal",
    "ServiceRequest",
    "Task",
    "Condition",
    "MedicationStatement",
    "MedicationRequest",
    "CareTeam",
    "Encounter",
    "QuestionnaireResponse",
    "Observation",
    "Provenance",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Communication",
    "CommunicationRequest",
    "Consent",
    "DocumentReference",
    "Composition",
    "Bundle",
    "Subscription",
)
"""The resource types fhir-bridge reads or writes: each gets a read scope (``.rs``) and a
read-write scope (``.cruds``)."""


def system_scopes() -> list[str]:
    """Every SMART v2 system scope the realm offers: ``system/T.rs`` and ``system/T.cruds``
    per type, and ``system/*.rs``."""
    scopes = [f"system/{t}.{access}" for t in SMART_TYPES for access in ("rs", "cruds")]
    return [*scopes, "system/*.rs"]


@dataclass(frozen=True)
class AuthServerUrls:
    """Where a realm of a Keycloak server answers."""

    base_url: str
    """``http://127.0.0.1:8180`` (no trailing slash)."""
    realm: str = REALM

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/realms/{self.realm}"

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"


@dataclass(frozen=True)
class RegisteredClient:
    """A client the realm now knows: what the bridge's connection settings need."""

    client_id: str
    algorithm: str
    key_id: str
    scopes: tuple[str, ...]
    token_url: str


class KeycloakAdmin:
    """The admin REST API of one Keycloak server, logged in as its bootstrap admin."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        realm: str = REALM,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.urls = AuthServerUrls(base_url.rstrip("/"), realm)
        self._username = username
        self._password = password
        self._http = httpx.Client(timeout=timeout, transport=transport)
        self._token: str | None = None
        self._token_until = 0.0

    def __enter__(self) -> KeycloakAdmin:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"KeycloakAdmin({self.urls.base_url!r}, realm={self.urls.realm!r})"

    # --- the admin's own token -----------------------------------------------------------

    def _admin_token(self) -> str:
        if self._token is not None and time.monotonic() < self._token_until:
            return self._token
        url = f"{self.urls.base_url}/realms/master/protocol/openid-connect/token"
        try:
            response = self._http.post(
                url,
                data={
                    "grant_type": "password",
                    "client_id": "admin-cli",
                    "username": self._username,
                    "password": self._password,
                },
            )
        except httpx.HTTPError as exc:
            raise SandboxError(f"Keycloak did not answer at {url}: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise SandboxError(
                f"Keycloak refused the sandbox's admin login (HTTP {response.status_code}); "
                "was its data directory made by another run?"
            )
        body = response.json()
        self._token = str(body["access_token"])
        self._token_until = time.monotonic() + max(float(body.get("expires_in", 60)) - 10, 5)
        return self._token

    def _call(
        self, method: str, path: str, payload: Any = None, *, ok: Iterable[int] = (200, 201, 204)
    ) -> httpx.Response:
        url = f"{self.urls.base_url}/admin/realms{path}"
        headers = {"Authorization": f"Bearer {self._admin_token()}"}
        try:
            response = self._http.request(method, url, json=payload, headers=headers)
        except httpx.HTTPError as exc:
            raise SandboxError(
                f"Keycloak did not answer {method} {path}: {type(exc).__name__}"
            ) from None
        if response.status_code not in set(ok):
            detail = _error_text(response)
            raise SandboxError(
                f"Keycloak answered HTTP {response.status_code} to {method} /admin/realms{path}"
                + (f": {detail}" if detail else "")
            )
        return response

    # --- realm and scopes ----------------------------------------------------------------

    def ensure_realm(self, token_lifespan: int = DEFAULT_TOKEN_LIFESPAN) -> None:
        """Create the realm when missing, with every SMART system scope as a client scope."""
        realm = self.urls.realm
        if self._call("GET", f"/{realm}", ok=(200, 404)).status_code == 404:
            self._call(
                "POST",
                "",
                {
                    "realm": realm,
                    "enabled": True,
                    "accessTokenLifespan": token_lifespan,
                    "sslRequired": "none",
                },
            )
        self.ensure_scopes(system_scopes())

    def ensure_scopes(self, names: Sequence[str]) -> dict[str, str]:
        """Client scopes named as SMART scopes, created when missing; their ids by name.

        Each scope is put into the access token's ``scope`` claim when a client asks for it,
        and nothing else (no claims, no consent screen)."""
        known = self._scope_ids()
        for name in names:
            if name in known:
                continue
            self._call(
                "POST",
                f"/{self.urls.realm}/client-scopes",
                {
                    "name": name,
                    "protocol": "openid-connect",
                    "attributes": {
                        "include.in.token.scope": "true",
                        "display.on.consent.screen": "false",
                    },
                },
            )
        known = self._scope_ids()
        missing = [n for n in names if n not in known]
        if missing:
            raise SandboxError(f"Keycloak did not keep the client scopes {missing}")
        return {n: known[n] for n in names}

    def _scope_ids(self) -> dict[str, str]:
        found = self._call("GET", f"/{self.urls.realm}/client-scopes").json()
        return {str(s["name"]): str(s["id"]) for s in found}

    # --- clients -------------------------------------------------------------------------

    def register_client(
        self,
        client_id: str,
        public_jwk: dict[str, Any],
        algorithm: str,
        scopes: Sequence[str],
        *,
        token_lifespan: int | None = None,
    ) -> RegisteredClient:
        """Create (or replace) a confidential client that authenticates with a JWT signed by
        the key of ``public_jwk`` (``algorithm`` RS384 or ES384), gets tokens for itself
        (service account, ``client_credentials``), and may ask for ``scopes`` (optional client
        scopes: a token holds those asked for). ``token_lifespan`` overrides the realm's
        access token lifespan for this client (tests use a few seconds)."""
        if algorithm not in ("RS384", "ES384"):
            raise SandboxError(f"a SMART client signs with RS384 or ES384, not {algorithm!r}")
        if "kid" not in public_jwk:
            raise SandboxError("the client's public key needs a kid")
        scope_ids = self.ensure_scopes(list(scopes))
        self.delete_client(client_id)
        attributes = {
            "use.jwks.string": "true",
            "jwks.string": json.dumps({"keys": [public_jwk]}),
            "use.jwks.url": "false",
            "token.endpoint.auth.signing.alg": algorithm,
        }
        if token_lifespan is not None:
            attributes["access.token.lifespan"] = str(token_lifespan)
        self._call(
            "POST",
            f"/{self.urls.realm}/clients",
            {
                "clientId": client_id,
                "enabled": True,
                "protocol": "openid-connect",
                "publicClient": False,
                "clientAuthenticatorType": "client-jwt",
                "serviceAccountsEnabled": True,
                "standardFlowEnabled": False,
                "implicitFlowEnabled": False,
                "directAccessGrantsEnabled": False,
                "fullScopeAllowed": False,
                "attributes": attributes,
                "defaultClientScopes": [],
                "optionalClientScopes": list(scopes),
            },
        )
        internal = self._client_uuid(client_id)
        if internal is None:
            raise SandboxError(f"Keycloak did not keep the client {client_id!r}")
        have = {
            str(s["name"])
            for s in self._call(
                "GET", f"/{self.urls.realm}/clients/{internal}/optional-client-scopes"
            ).json()
        }
        for name in scopes:
            if name not in have:
                self._call(
                    "PUT",
                    f"/{self.urls.realm}/clients/{internal}/optional-client-scopes/"
                    f"{scope_ids[name]}",
                )
        return RegisteredClient(
            client_id, algorithm, str(public_jwk["kid"]), tuple(scopes), self.urls.token_url
        )

    def has_client(self, client_id: str) -> bool:
        """Whether the realm knows this client."""
        return self._client_uuid(client_id) is not None

    def delete_client(self, client_id: str) -> bool:
        """Remove a client; False when there was none."""
        internal = self._client_uuid(client_id)
        if internal is None:
            return False
        self._call("DELETE", f"/{self.urls.realm}/clients/{internal}")
        return True

    def _client_uuid(self, client_id: str) -> str | None:
        found = self._call(
            "GET", f"/{self.urls.realm}/clients?clientId={quote(client_id, safe='')}"
        ).json()
        return str(found[0]["id"]) if found else None


def _error_text(response: httpx.Response) -> str:
    """Keycloak's own error words (``errorMessage``/``error``), short: no request content."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    text = body.get("errorMessage") or body.get("error") or ""
    return str(text)[:200]
