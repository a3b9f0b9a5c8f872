"""SMART Backend Services clients registered with the test session's real Keycloak: the key
pair, the registration, and the bridge's auth (or connection settings) that go with them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fhir_bridge import sandbox
from fhir_bridge.config import AuthConfig
from fhir_bridge.fhir import SmartBackendServices

READ_SCOPES = ("system/Patient.rs", "system/Goal.rs")


@dataclass(frozen=True)
class SmartClient:
    """A client the realm knows, with the private key the bridge signs with."""

    registered: sandbox.RegisteredClient
    key: sandbox.KeyPair
    key_file: Path

    @property
    def scope(self) -> str:
        return " ".join(self.registered.scopes)

    def auth(self, scope: str | None = None, **options: Any) -> SmartBackendServices:
        """The bridge's SMART auth for this client (token URL given: no discovery)."""
        return SmartBackendServices(
            client_id=self.registered.client_id,
            private_key_pem=self.key.private_pem,
            key_id=self.key.key_id,
            scope=scope or self.scope,
            algorithm=self.key.algorithm,
            token_url=self.registered.token_url,
            **options,
        )

    def auth_config(self, scope: str | None = None) -> AuthConfig:
        """The ``[connections.NAME.auth]`` block of a connection using this client."""
        return AuthConfig(
            kind="smart-backend",
            token_url=self.registered.token_url,
            client_id=self.registered.client_id,
            private_key_file=self.key_file,
            key_id=self.key.key_id,
            algorithm=self.key.algorithm,
            scope=scope or self.scope,
        )


def register(
    admin: sandbox.KeycloakAdmin,
    folder: Path,
    algorithm: Literal["RS384", "ES384"] = "RS384",
    scopes: tuple[str, ...] = READ_SCOPES,
    *,
    token_lifespan: int | None = None,
) -> SmartClient:
    """A fresh client (unique id: the realm is shared) with a fresh key pair."""
    key = sandbox.generate_key_pair(algorithm)
    client_id = f"test-{algorithm.lower()}-{uuid.uuid4().hex[:10]}"
    registered = admin.register_client(
        client_id, key.public_jwk, algorithm, scopes, token_lifespan=token_lifespan
    )
    return SmartClient(registered, key, key.write_private(folder / f"{client_id}.pem"))
