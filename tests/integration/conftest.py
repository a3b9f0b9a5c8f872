"""Integration tests talk to a real FHIR R4 server.

By default that is the local HAPI sandbox (``fhir_bridge.sandbox``), started once per session
on ``$FHIR_BRIDGE_TEST_SANDBOX_PORT`` (8080) and stopped at the end if this session started it;
a server already answering on that port is reused. ``FHIR_BRIDGE_TEST_FHIR_URL`` points the
tests at another server instead (then nothing is started).

Routing tests get two more open servers of their own (``hospital_two_url`` on 8082,
``community_url`` on 8083), started when first asked for.

EHR-like profile tests get ``epic_like`` (8090) and ``oracle_like`` (8091), sandboxes started
with ``--profile epic-like`` / ``oracle-like`` when first asked for (``profile_sandbox``), SMART
Backend Services required with tokens from the session's Keycloak (``keycloak``, 8180);
``epic_like_url``/``epic_like_auth`` (and the oracle ones) give a connection's base URL and auth;
``full_access`` is a client allowed every type, for tests that must meet the profiles' refusals.

Conformance tests get ``us_core_url``: sandboxes validating against US Core 7.0.0 (8095) and
6.1.0 (8096) by resource type (``--validate --ig``), started when first asked for.

Tests that need request validation get a second sandbox, started with ``validate=True`` on
``$FHIR_BRIDGE_TEST_VALIDATING_PORT`` (8081), reused when already running there and stopped at
the end if this session started it; ``FHIR_BRIDGE_TEST_VALIDATING_URL`` names another
validating server instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_bridge import sandbox
from fhir_bridge.config import AuthConfig
from fhir_bridge.fhir import SmartBackendServices, make_auth
from tests.integration.smart import SmartClient, register

URL_ENV = "FHIR_BRIDGE_TEST_FHIR_URL"
VALIDATING_URL_ENV = "FHIR_BRIDGE_TEST_VALIDATING_URL"
VALIDATING_PORT_ENV = "FHIR_BRIDGE_TEST_VALIDATING_PORT"
PORT_ENV = "FHIR_BRIDGE_TEST_SANDBOX_PORT"
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


def _answers(url: str) -> bool:
    try:
        response = httpx.get(
            f"{url}/metadata", timeout=5.0, headers={"Accept": "application/fhir+json"}
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _start(port: int, validate: bool = False) -> str:
    try:
        return sandbox.start(port, validate).base_url
    except sandbox.SandboxError as exc:
        tail = f"\n--- log tail ---\n{exc.log_tail}" if exc.log_tail else ""
        pytest.fail(f"could not start the HAPI sandbox: {exc.message}{tail}", pytrace=False)


@pytest.fixture(scope="session")
def using_local_sandbox() -> bool:
    """True when the tests run against the HAPI sandbox built from this repository."""
    return not os.environ.get(URL_ENV)


@pytest.fixture(scope="session")
def fhir_base_url() -> Iterator[str]:
    """Base URL of the FHIR server under test (no trailing slash)."""
    configured = os.environ.get(URL_ENV)
    if configured:
        yield configured.rstrip("/")
        return
    port = int(os.environ.get(PORT_ENV, str(sandbox.DEFAULT_PORT)))
    before = sandbox.status(port)
    if before.running:  # ours, maybe still starting: wait for it, leave it running
        yield _start(port, before.validate)
        return
    url = sandbox.base_url(port)
    if _answers(url):  # some other FHIR server on that port
        yield url
        return
    url = _start(port)
    try:
        yield url
    finally:
        sandbox.stop(port)


@pytest.fixture(scope="session")
def validating_base_url(using_local_sandbox: bool) -> Iterator[str]:
    """A server that validates requests against base R4 and refuses those with errors."""
    configured = os.environ.get(VALIDATING_URL_ENV)
    if configured:
        yield configured.rstrip("/")
        return
    if not using_local_sandbox:
        pytest.skip(f"{URL_ENV} is set: set {VALIDATING_URL_ENV} too to test validation")
    port = int(os.environ.get(VALIDATING_PORT_ENV, str(sandbox.DEFAULT_PORT + 1)))
    already = sandbox.status(port)
    if already.running and already.validate and already.healthy:
        yield already.base_url
        return
    url = _start(port, validate=True)
    try:
        yield url
    finally:
        sandbox.stop(port)


@pytest.fixture(scope="session")
def fhir(fhir_base_url: str) -> Iterator[httpx.Client]:
    """An httpx client for the server under test, speaking FHIR JSON."""
    with httpx.Client(
        base_url=fhir_base_url,
        headers={"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"},
        timeout=httpx.Timeout(120.0, connect=10.0),
    ) as client:
        yield client


HOSPITAL_TWO_PORT_ENV = "FHIR_BRIDGE_TEST_HOSPITAL_TWO_PORT"
COMMUNITY_PORT_ENV = "FHIR_BRIDGE_TEST_COMMUNITY_PORT"


def _extra_sandbox(port_env: str, default_port: int) -> Iterator[str]:
    """One more open HAPI sandbox of its own (its own database), reused when already running
    on that port, stopped at the end if this session started it."""
    port = int(os.environ.get(port_env, str(default_port)))
    already = sandbox.status(port)
    if already.running and not already.validate:
        yield _start(port)
        return
    url = _start(port)
    try:
        yield url
    finally:
        sandbox.stop(port)


@pytest.fixture(scope="session")
def hospital_two_url(using_local_sandbox: bool) -> Iterator[str]:
    """A second hospital's FHIR server (``fhir_base_url`` plays the first): for routing tests,
    where what one hospital must never see is checked on a server of its own."""
    if not using_local_sandbox:
        pytest.skip(f"{URL_ENV} is set: the routing tests start servers of their own")
    yield from _extra_sandbox(HOSPITAL_TWO_PORT_ENV, sandbox.DEFAULT_PORT + 2)


@pytest.fixture(scope="session")
def community_url(using_local_sandbox: bool) -> Iterator[str]:
    """A community organisation's FHIR server (a food bank's referral platform)."""
    if not using_local_sandbox:
        pytest.skip(f"{URL_ENV} is set: the routing tests start servers of their own")
    yield from _extra_sandbox(COMMUNITY_PORT_ENV, sandbox.DEFAULT_PORT + 3)


EPIC_LIKE_PORT_ENV = "FHIR_BRIDGE_TEST_EPIC_LIKE_PORT"
ORACLE_LIKE_PORT_ENV = "FHIR_BRIDGE_TEST_ORACLE_LIKE_PORT"


def profile_sandbox(
    port: int, profile: str, smart: sandbox.SmartServer | None = None
) -> Iterator[str]:
    """A sandbox of its own with an EHR-like ``profile`` (and, when given, SMART authorization
    by ``smart``): reused when it already runs so, restarted when it runs otherwise, stopped at
    the end if this session started it."""
    already = sandbox.status(port)
    if already.running and already.profile == profile and already.smart == smart:
        yield _start_profile(port, profile, smart)
        return
    if already.running:
        sandbox.stop(port)
    url = _start_profile(port, profile, smart)
    try:
        yield url
    finally:
        sandbox.stop(port)


def _start_profile(port: int, profile: str, smart: sandbox.SmartServer | None) -> str:
    try:
        return sandbox.start(port, profile=profile, smart=smart, timeout=600).base_url
    except sandbox.SandboxError as exc:
        tail = f"\n--- log tail ---\n{exc.log_tail}" if exc.log_tail else ""
        pytest.fail(f"could not start the {profile} sandbox: {exc.message}{tail}", pytrace=False)


KEYCLOAK_PORT_ENV = "FHIR_BRIDGE_TEST_KEYCLOAK_PORT"


@pytest.fixture(scope="session")
def keycloak() -> Iterator[sandbox.KeycloakAdmin]:
    """The admin API of a real Keycloak with the ``fhir-bridge`` realm and the SMART system
    scopes: started once per session on ``$FHIR_BRIDGE_TEST_KEYCLOAK_PORT`` (8180), reused
    when already running there, stopped at the end if this session started it."""
    port = int(os.environ.get(KEYCLOAK_PORT_ENV, str(sandbox.KEYCLOAK_PORT)))
    started = not sandbox.keycloak_status(port).running
    try:
        sandbox.start_keycloak(port)
        admin = sandbox.keycloak_admin(port)
        admin.ensure_realm()
    except sandbox.SandboxError as exc:
        tail = f"\n--- log tail ---\n{exc.log_tail}" if exc.log_tail else ""
        pytest.fail(f"could not start Keycloak: {exc.message}{tail}", pytrace=False)
    try:
        yield admin
    finally:
        admin.close()
        if started:
            sandbox.stop_keycloak(port)


@dataclass(frozen=True)
class SmartSandbox:
    """A SMART-protected profile sandbox and the client the bridge uses with it."""

    base_url: str
    setup: sandbox.SmartSetup

    def auth_config(self, **changes: Any) -> AuthConfig:
        """The connection's ``auth`` as ``sandbox start --profile`` writes it (``changes``
        override fields, e.g. a narrower ``scope``)."""
        s = self.setup
        fields: dict[str, Any] = {
            "kind": "smart-backend",
            "token_url": s.auth_server.token_url,
            "client_id": s.client_id,
            "private_key_file": s.key_file,
            "key_id": s.key_id,
            "algorithm": s.algorithm,
            "scope": " ".join(s.scopes),
        }
        return AuthConfig(**(fields | changes))

    def auth(self, **changes: Any) -> SmartBackendServices:
        """The bridge's SMART auth for this sandbox's client (an ``httpx.Auth``, sync or
        async), as a connection with :meth:`auth_config` builds it."""
        config = self.auth_config(**changes)
        built = make_auth(
            config.kind,
            base_url=self.base_url,
            token_url=config.token_url,
            client_id=config.client_id,
            private_key_file=config.private_key_file,
            key_id=config.key_id,
            algorithm=config.algorithm,
            scope=config.scope,
        )
        assert isinstance(built, SmartBackendServices)
        return built


def _smart_profile(profile: str, port_env: str, default_port: int) -> Iterator[SmartSandbox]:
    """A profile sandbox requiring SMART, with tokens from the session's Keycloak and a client
    registered as ``sandbox start --profile`` registers it."""
    port = int(os.environ.get(port_env, str(default_port)))
    try:
        setup = sandbox.set_up_smart(profile, port)
    except sandbox.SandboxError as exc:
        pytest.fail(f"could not register the {profile} client: {exc.message}", pytrace=False)
    urls = setup.auth_server
    smart = sandbox.SmartServer(urls.issuer, urls.jwks_url, urls.token_url)
    for url in profile_sandbox(port, profile, smart):
        yield SmartSandbox(url, setup)


@pytest.fixture(scope="session")
def epic_like(using_local_sandbox: bool, keycloak: sandbox.KeycloakAdmin) -> Iterator[SmartSandbox]:
    """An Epic-like FHIR server (``--profile epic-like``): CarePlan and Goal read-only, no
    ``_lastUpdated`` on the care types, no transactions; SMART Backend Services required, tokens
    from the session's Keycloak (port ``$FHIR_BRIDGE_TEST_EPIC_LIKE_PORT``, 8090)."""
    if not using_local_sandbox:
        pytest.skip(f"{URL_ENV} is set: the profile tests start servers of their own")
    yield from _smart_profile("epic-like", EPIC_LIKE_PORT_ENV, 8090)


@pytest.fixture(scope="session")
def oracle_like(
    using_local_sandbox: bool, keycloak: sandbox.KeycloakAdmin
) -> Iterator[SmartSandbox]:
    """An Oracle-Health-like FHIR server (``--profile oracle-like``): batch but no transaction,
    no conditional create or update, If-Match required on update; SMART required (port
    ``$FHIR_BRIDGE_TEST_ORACLE_LIKE_PORT``, 8091)."""
    if not using_local_sandbox:
        pytest.skip(f"{URL_ENV} is set: the profile tests start servers of their own")
    yield from _smart_profile("oracle-like", ORACLE_LIKE_PORT_ENV, 8091)


@pytest.fixture(scope="session")
def epic_like_url(epic_like: SmartSandbox) -> str:
    """The Epic-like server's base URL (its requests need a token: ``epic_like_auth``)."""
    return epic_like.base_url


@pytest.fixture(scope="session")
def oracle_like_url(oracle_like: SmartSandbox) -> str:
    """The Oracle-like server's base URL (its requests need a token: ``oracle_like_auth``)."""
    return oracle_like.base_url


@pytest.fixture(scope="session")
def epic_like_auth(epic_like: SmartSandbox) -> AuthConfig:
    """The ``auth`` of a connection to ``epic_like_url`` (``ConnectionConfig(auth=...)``)."""
    return epic_like.auth_config()


@pytest.fixture(scope="session")
def oracle_like_auth(oracle_like: SmartSandbox) -> AuthConfig:
    """The ``auth`` of a connection to ``oracle_like_url``."""
    return oracle_like.auth_config()


@pytest.fixture(scope="session")
def full_access(
    keycloak: sandbox.KeycloakAdmin, tmp_path_factory: pytest.TempPathFactory
) -> SmartClient:
    """A SMART client allowed every type (``system/<Type>.cruds``), for tests that must meet a
    profile's own refusals (405, 400, 412) rather than a scope's 403: the profile's client
    only reads CarePlan and Goal on epic-like."""
    everything = tuple(s for s in sandbox.system_scopes() if s.endswith(".cruds"))
    return register(keycloak, tmp_path_factory.mktemp("full-access"), "RS384", everything)


US_CORE_PORT_ENVS = {
    "us-core-7": ("FHIR_BRIDGE_TEST_US_CORE_7_PORT", 8095),
    "us-core-6.1": ("FHIR_BRIDGE_TEST_US_CORE_6_1_PORT", 8096),
}
US_CORE_START_TIMEOUT = 900.0
"""Loading a US Core package and warming its validator takes minutes on a busy machine."""


def us_core_sandbox(port: int, ig: str) -> Iterator[str]:
    """A validating sandbox of its own with the US Core package ``ig`` loaded: reused when it
    already runs so, restarted when it runs otherwise, stopped at the end if this session
    started it."""
    already = sandbox.status(port)
    if already.running and already.validate and already.ig == ig:
        yield _start_us_core(port, ig)  # waits until it answers
        return
    if already.running:
        sandbox.stop(port)
    url = _start_us_core(port, ig)
    try:
        yield url
    finally:
        sandbox.stop(port)


def _start_us_core(port: int, ig: str) -> str:
    try:
        return sandbox.start(port, True, ig=ig, timeout=US_CORE_START_TIMEOUT).base_url
    except sandbox.SandboxError as exc:
        tail = f"\n--- log tail ---\n{exc.log_tail}" if exc.log_tail else ""
        pytest.fail(f"could not start the {ig} sandbox: {exc.message}{tail}", pytrace=False)


@pytest.fixture(scope="session", params=sorted(US_CORE_PORT_ENVS))
def us_core_url(request: pytest.FixtureRequest, using_local_sandbox: bool) -> Iterator[str]:
    """A server that validates every request against US Core (7.0.0, then 6.1.0) by resource
    type, as a hospital does, and refuses those with errors (``--validate --ig``; 8095/8096)."""
    if not using_local_sandbox:
        pytest.skip(f"{URL_ENV} is set: the US Core tests start servers of their own")
    ig = str(request.param)
    port_env, default_port = US_CORE_PORT_ENVS[ig]
    yield from us_core_sandbox(int(os.environ.get(port_env, str(default_port))), ig)
