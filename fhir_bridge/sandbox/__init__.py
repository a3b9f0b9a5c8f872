"""The local FHIR sandbox: a real HAPI FHIR JPA server (R4, H2) built from ``sandbox/hapi/``.

    from fhir_bridge import sandbox

    info = sandbox.start(port=8080)          # builds the jar on first use, waits until ready
    sandbox.start(port=8090, profile="epic-like")   # refuses what an Epic-like EHR refuses
    sandbox.start(port=8095, validate=True, ig="us-core-7")  # validates as a hospital does
    info.base_url                            # 'http://127.0.0.1:8080/fhir'
    sandbox.server_software(info.base_url)   # ('HAPI FHIR Server', '8.8.0')
    sandbox.reset()                          # stop, delete the database, start again empty
    sandbox.stop()

The authorization server for SMART-protected profiles is a local Keycloak (``_keycloak``):

    kc = sandbox.start_keycloak()            # port 8180; fetched with Maven on first use
    with sandbox.keycloak_admin() as admin:
        admin.ensure_realm()
        key = sandbox.generate_key_pair("ES384")
        admin.register_client("bridge", key.public_jwk, "ES384", ["system/Goal.rs"])
    sandbox.stop_keycloak()

A network in front of any server, for the benchmark and the fault tests (``_netproxy``):

    with sandbox.running_in_thread("127.0.0.1", 8080, latency_ms=25) as proxy:
        proxy.inject(sandbox.Fault.reset())  # the next request's connection is reset
        ...                                  # talk to proxy.url

Every failure raises :class:`SandboxError` (``message``, ``log_tail``). See ``docs/sandbox.md``.
"""

from ._build import build
from ._error import SandboxError
from ._keycloak import KEYCLOAK_PORT, KEYCLOAK_VERSION, KeycloakInfo
from ._keycloak import admin as keycloak_admin
from ._keycloak import start as start_keycloak
from ._keycloak import status as keycloak_status
from ._keycloak import stop as stop_keycloak
from ._keycloak_admin import (
    REALM,
    AuthServerUrls,
    KeycloakAdmin,
    RegisteredClient,
    system_scopes,
)
from ._keys import KeyPair, generate_key_pair
from ._manager import SandboxInfo, logs, reset, start, status, stop
from ._netproxy import Fault, NetProxy, ProxyStats, running_in_thread
from ._options import DEFAULT_PROFILE, IMPLEMENTATION_GUIDES, PROFILES, SmartServer
from ._paths import (
    DEFAULT_PORT,
    HAPI_VERSION,
    base_url,
    default_state_dir,
    instance_dir,
    jar_path,
    pom_hapi_version,
)
from ._probe import server_software
from ._smart_setup import SmartSetup, profile_scopes, protected
from ._smart_setup import set_up as set_up_smart

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_PROFILE",
    "HAPI_VERSION",
    "IMPLEMENTATION_GUIDES",
    "KEYCLOAK_PORT",
    "KEYCLOAK_VERSION",
    "PROFILES",
    "REALM",
    "AuthServerUrls",
    "Fault",
    "KeyPair",
    "KeycloakAdmin",
    "KeycloakInfo",
    "NetProxy",
    "ProxyStats",
    "RegisteredClient",
    "SandboxError",
    "SandboxInfo",
    "SmartServer",
    "SmartSetup",
    "base_url",
    "build",
    "default_state_dir",
    "generate_key_pair",
    "instance_dir",
    "jar_path",
    "keycloak_admin",
    "keycloak_status",
    "logs",
    "pom_hapi_version",
    "profile_scopes",
    "protected",
    "reset",
    "running_in_thread",
    "server_software",
    "set_up_smart",
    "start",
    "start_keycloak",
    "status",
    "stop",
    "stop_keycloak",
    "system_scopes",
]
