"""A SMART-protected sandbox's credentials: Keycloak started (shared by every profile), a key
pair generated, a client registered with the scopes the profile allows, and a ready
``fhir-bridge.toml`` written next to the private key, in the sandbox's state directory:

- ``smart/client-key.pem``  the private key (mode 0600)
- ``smart/client.json``     client id, key id, algorithm, scopes (to reuse them on a restart)
- ``fhir-bridge.toml``      the connection block (``FHIR_BRIDGE_CONFIG`` can name it as it is)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ._build import Progress, say
from ._error import SandboxError
from ._files import read_json, write_json
from ._keycloak import KEYCLOAK_PORT
from ._keycloak import admin as keycloak_admin
from ._keycloak import start as start_keycloak
from ._keycloak_admin import SMART_TYPES, AuthServerUrls
from ._keys import ALGORITHMS, Algorithm, generate_key_pair
from ._paths import base_url, instance_dir

READ_ONLY_TYPES: dict[str, tuple[str, ...]] = {
    "epic-like": ("CarePlan", "Goal"),
    "oracle-like": (),
}
"""Per SMART-protected profile, the types its client may only read and search (the server
refuses writes to them anyway: an Epic-like EHR does not let a third party write CarePlan or
Goal). Every other type the bridge uses gets ``.cruds``."""


def protected(profile: str) -> bool:
    """Whether a profile runs with SMART Backend Services required."""
    return profile in READ_ONLY_TYPES


def profile_scopes(profile: str) -> list[str]:
    """The system scopes a profile's client is registered for, and asks for."""
    if not protected(profile):
        raise SandboxError(f"the {profile!r} profile runs without an authorization server")
    read_only = READ_ONLY_TYPES[profile]
    return [f"system/{t}.{'rs' if t in read_only else 'cruds'}" for t in SMART_TYPES]


@dataclass(frozen=True)
class SmartSetup:
    """What a SMART-protected sandbox and the bridge's connection to it need."""

    profile: str
    fhir_base_url: str
    auth_server: AuthServerUrls
    client_id: str
    key_id: str
    algorithm: Algorithm
    scopes: tuple[str, ...]
    key_file: Path
    config_file: Path

    @property
    def connection_name(self) -> str:
        return f"sandbox-{self.profile}"

    def toml(self) -> str:
        """The ``fhir-bridge.toml`` connection block for this sandbox."""
        name = self.connection_name
        return "\n".join(
            [
                f"[connections.{name}]",
                f"base_url = {json.dumps(self.fhir_base_url)}",
                "",
                f"[connections.{name}.auth]",
                'kind = "smart-backend"',
                f"token_url = {json.dumps(self.auth_server.token_url)}",
                f"client_id = {json.dumps(self.client_id)}",
                f"private_key_file = {json.dumps(str(self.key_file))}",
                f"key_id = {json.dumps(self.key_id)}",
                f"algorithm = {json.dumps(self.algorithm)}",
                f"scope = {json.dumps(' '.join(self.scopes))}",
                "",
            ]
        )


def set_up(
    profile: str,
    port: int,
    *,
    algorithm: Algorithm = "RS384",
    state_dir: Path | None = None,
    keycloak_port: int = KEYCLOAK_PORT,
    keycloak_state_dir: Path | None = None,
    progress: Progress | None = None,
) -> SmartSetup:
    """Start Keycloak (or reuse it), and give the sandbox of ``port`` a client with the
    profile's scopes: reused when its key file and registration are still there with the
    same algorithm, else a fresh key pair registered anew."""
    if algorithm not in ALGORITHMS:
        raise SandboxError(f"a SMART client signs with RS384 or ES384, not {algorithm!r}")
    scopes = profile_scopes(profile)
    folder = instance_dir(port, state_dir)
    smart_dir = folder / "smart"
    key_file = smart_dir / "client-key.pem"
    recorded = read_json(smart_dir / "client.json")
    client_id = f"fhir-bridge-{profile}-{port}"
    start_keycloak(keycloak_port, keycloak_state_dir, progress=progress)
    with keycloak_admin(keycloak_port, keycloak_state_dir) as admin:
        admin.ensure_realm()
        reuse = (
            key_file.is_file()
            and recorded.get("client_id") == client_id
            and recorded.get("algorithm") == algorithm
            and recorded.get("scopes") == scopes
            and admin.has_client(client_id)
        )
        if reuse:
            key_id = str(recorded["key_id"])
        else:
            key = generate_key_pair(algorithm)
            admin.register_client(client_id, key.public_jwk, algorithm, scopes)
            key.write_private(key_file)
            key_id = key.key_id
            write_json(
                smart_dir / "client.json",
                {
                    "client_id": client_id,
                    "key_id": key_id,
                    "algorithm": algorithm,
                    "scopes": scopes,
                },
            )
            say(progress, f"registered the SMART client {client_id} ({algorithm})")
        urls = admin.urls
    setup = SmartSetup(
        profile=profile,
        fhir_base_url=base_url(port),
        auth_server=urls,
        client_id=client_id,
        key_id=key_id,
        algorithm=algorithm,
        scopes=tuple(scopes),
        key_file=key_file,
        config_file=folder / "fhir-bridge.toml",
    )
    setup.config_file.write_text(setup.toml(), encoding="utf-8")
    return setup
