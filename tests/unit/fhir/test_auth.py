"""Auth: bearer tokens, client credentials, SMART Backend Services against a verifying server."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from fhir_bridge.errors import AuthError, FhirStatusError, InputError
from fhir_bridge.fhir import (
    BearerToken,
    ClientCredentials,
    FhirClient,
    SmartBackendServices,
    make_auth,
)
from tests.unit.fhir.fakes import BASE, PATIENT, FakeTime, fhir_json

pytestmark = pytest.mark.anyio

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


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


@pytest.fixture(scope="module")
def rsa_key() -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return KeyPair("RS384", _pem(key), key.public_key())


@pytest.fixture(scope="module")
def ec_key() -> KeyPair:
    key = ec.generate_private_key(ec.SECP384R1())
    return KeyPair("ES384", _pem(key), key.public_key())


@pytest.fixture(params=["RS384", "ES384"])
def key(request: pytest.FixtureRequest, rsa_key: KeyPair, ec_key: KeyPair) -> KeyPair:
    return rsa_key if request.param == "RS384" else ec_key


@pytest.fixture
def now() -> FakeTime:
    """Fake time starting at the real time."""
    return FakeTime(now=float(int(time.time())))


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


# --- SMART Backend Services ------------------------------------------------------------------


async def test_smart_client_assertion_is_verified_by_the_token_endpoint(
    key: KeyPair, now: FakeTime
) -> None:
    """The assertion verifies with the registered public key; header and claims are as SMART
    requires, and the form carries grant type, assertion type and scope."""
    server = AuthServer(key.public_key, key.algorithm, now)
    async with client(server, smart(key, now)) as fhir:
        await fhir.read("Patient", "p1")
    [form] = server.token_forms
    assert form["grant_type"] == "client_credentials"
    assert form["client_assertion_type"] == (
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    )
    assert form["scope"] == SCOPE
    [header] = server.assertion_headers
    assert header == {"alg": key.algorithm, "kid": "key-1", "typ": "JWT"}
    [claims] = server.assertion_claims
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert claims["aud"] == TOKEN_URL
    assert now.now < claims["exp"] <= now.now + 300
    assert server.fhir_auth == ["Bearer access-token-1"]


async def test_jku_goes_in_the_header_when_given(rsa_key: KeyPair, now: FakeTime) -> None:
    """A jku (JWKS URL) is added to the assertion header."""
    server = AuthServer(rsa_key.public_key, "RS384", now)
    auth = smart(rsa_key, now, jku="https://bridge.test/.well-known/jwks.json")
    async with client(server, auth) as fhir:
        await fhir.read("Patient", "p1")
    assert server.assertion_headers[0]["jku"] == "https://bridge.test/.well-known/jwks.json"


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


async def test_token_url_given_skips_discovery(rsa_key: KeyPair, now: FakeTime) -> None:
    """With token_url there is no smart-configuration request."""
    server = AuthServer(rsa_key.public_key, "RS384", now)
    auth = smart(rsa_key, now, fhir_base_url=None, token_url=TOKEN_URL)
    async with client(server, auth) as fhir:
        await fhir.read("Patient", "p1")
    assert server.discovery_requests == 0


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


async def test_unregistered_key_is_refused_as_auth_error(rsa_key: KeyPair, now: FakeTime) -> None:
    """An assertion signed with a key the server does not know: AuthError, OAuth code kept."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server = AuthServer(other.public_key(), "RS384", now)
    async with client(server, smart(rsa_key, now)) as fhir:
        with pytest.raises(AuthError) as caught:
            await fhir.read("Patient", "p1")
    assert (caught.value.status, caught.value.error) == (401, "invalid_client")
    assert str(caught.value) == "token endpoint refused the request (HTTP 401) (invalid_client)"
    assert server.fhir_auth == []


async def test_discovery_without_our_algorithm_is_an_auth_error(
    rsa_key: KeyPair, now: FakeTime
) -> None:
    """A server that accepts only ES384 assertions is told apart before signing RS384."""
    server = AuthServer(rsa_key.public_key, "RS384", now, signing_algs=["ES384"])
    async with client(server, smart(rsa_key, now)) as fhir:
        with pytest.raises(AuthError, match="RS384"):
            await fhir.read("Patient", "p1")
    assert server.token_requests == 0


async def test_failed_discovery_is_an_auth_error(rsa_key: KeyPair, now: FakeTime) -> None:
    """No smart-configuration (404): AuthError with the status."""
    transport = httpx.MockTransport(lambda r: httpx.Response(404))
    async with FhirClient(BASE, auth=smart(rsa_key, now), transport=transport) as fhir:
        with pytest.raises(AuthError) as caught:
            await fhir.read("Patient", "p1")
    assert caught.value.status == 404


def test_key_must_fit_the_algorithm(rsa_key: KeyPair, ec_key: KeyPair) -> None:
    """An EC key for RS384 (or the reverse) and non-PEM text are InputErrors showing no key."""
    with pytest.raises(InputError, match="RS384"):
        SmartBackendServices(
            client_id="c",
            private_key_pem=ec_key.private_pem,
            key_id="k",
            scope="s",
            token_url=TOKEN_URL,
        )
    with pytest.raises(InputError) as caught:
        SmartBackendServices(
            client_id="c",
            private_key_pem="not a key",
            key_id="k",
            scope="s",
            algorithm="ES384",
            token_url=TOKEN_URL,
        )
    assert "not a key" not in str(caught.value)


def test_assertion_lifetime_is_at_most_five_minutes(rsa_key: KeyPair) -> None:
    """exp more than 300 s ahead is refused at construction."""
    with pytest.raises(ValueError, match="300"):
        SmartBackendServices(
            client_id="c",
            private_key_pem=rsa_key.private_pem,
            key_id="k",
            scope="s",
            token_url=TOKEN_URL,
            assertion_lifetime=301,
        )


def test_sync_httpx_client_works_too(rsa_key: KeyPair, now: FakeTime) -> None:
    """The generator auth flow also serves a synchronous httpx.Client."""
    server = AuthServer(rsa_key.public_key, "RS384", now, fhir_401s=1)
    auth = smart(rsa_key, now)
    with httpx.Client(auth=auth, transport=httpx.MockTransport(server)) as http:
        assert http.get(f"{BASE}/Patient/p1").status_code == 200
    assert server.token_requests == 2


# --- client credentials and bearer ----------------------------------------------------------


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


async def test_client_secret_basic() -> None:
    """client_secret_basic: id and secret form-encoded then base64 in Authorization."""
    server = SecretServer(basic=True)
    auth = ClientCredentials(TOKEN_URL, "bridge client", "p@ss:word", SCOPE)
    async with client(server, auth) as fhir:
        await fhir.read("Patient", "p1")
    expected = base64.b64encode(b"bridge%20client:p%40ss%3Aword").decode()
    assert server.authorizations == [f"Basic {expected}"]
    assert server.forms == [{"grant_type": "client_credentials", "scope": SCOPE}]


async def test_client_secret_post() -> None:
    """client_secret_post: id and secret in the form, no Authorization header."""
    server = SecretServer(basic=False)
    auth = ClientCredentials(TOKEN_URL, CLIENT_ID, SECRET, method="client_secret_post")
    async with client(server, auth) as fhir:
        await fhir.read("Patient", "p1")
    assert server.authorizations == [None]
    assert server.forms[0]["client_secret"] == SECRET
    assert server.forms[0]["client_id"] == CLIENT_ID


async def test_static_bearer_token_401_is_raised() -> None:
    """A fixed token cannot be renewed: a 401 is raised at once."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(401)

    async with client(handler, BearerToken("static-token-value")) as fhir:
        with pytest.raises(FhirStatusError) as caught:
            await fhir.read("Patient", "p1")
    assert caught.value.status == 401
    assert seen == ["Bearer static-token-value"]


def test_bearer_from_env_and_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tokens load from an env var or a file (stripped); a missing one names only its source."""
    monkeypatch.setenv("BRIDGE_TOKEN", "env-token\n")
    path = tmp_path / "token"
    path.write_text("file-token\n")
    assert BearerToken.from_env("BRIDGE_TOKEN")._token.reveal() == "env-token"
    assert BearerToken.from_file(path)._token.reveal() == "file-token"
    monkeypatch.delenv("BRIDGE_TOKEN")
    with pytest.raises(InputError, match=r"\$BRIDGE_TOKEN"):
        BearerToken.from_env("BRIDGE_TOKEN")
    with pytest.raises(InputError, match="cannot read"):
        BearerToken.from_file(tmp_path / "absent")


def test_make_auth_from_connection_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ec_key: KeyPair
) -> None:
    """Each auth kind of [connections.NAME.auth] builds the matching httpx.Auth."""
    key_file = tmp_path / "bridge.pem"
    key_file.write_text(ec_key.private_pem)
    monkeypatch.setenv("CC_SECRET", SECRET)
    assert make_auth("none", base_url=BASE) is None
    monkeypatch.setenv("TOK", "t")
    assert isinstance(make_auth("bearer", base_url=BASE, token_env="TOK"), BearerToken)
    cc = make_auth(
        "client-credentials",
        base_url=BASE,
        token_url=TOKEN_URL,
        client_id=CLIENT_ID,
        client_secret_env="CC_SECRET",
    )
    assert isinstance(cc, ClientCredentials)
    sb = make_auth(
        "smart-backend",
        base_url=BASE,
        client_id=CLIENT_ID,
        private_key_file=key_file,
        key_id="k1",
        algorithm="ES384",
        scope=SCOPE,
    )
    assert isinstance(sb, SmartBackendServices)
    assert sb.fhir_base_url == BASE
    with pytest.raises(InputError, match="required"):
        make_auth("smart-backend", base_url=BASE, client_id=CLIENT_ID, key_id="k", scope="s")


# --- secrets stay secret ----------------------------------------------------------------------


async def test_no_secret_in_repr_str_errors_or_logs(
    rsa_key: KeyPair, now: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    """Keys, client secrets, assertions and tokens appear in no repr, message or log record."""
    caplog.set_level(logging.DEBUG, logger="fhir_bridge")
    server = AuthServer(rsa_key.public_key, "RS384", now, fhir_401s=100)
    sb = smart(rsa_key, now)
    async with client(server, sb) as fhir:
        with pytest.raises(FhirStatusError) as fhir_error:
            await fhir.read("Patient", "p1")

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "invalid_client"})

    cc = ClientCredentials(TOKEN_URL, CLIENT_ID, SECRET)
    async with client(refuse, cc) as fhir:
        with pytest.raises(AuthError) as auth_error:
            await fhir.read("Patient", "p1")
    bearer = BearerToken("static-token-value")

    key_body = rsa_key.private_pem.splitlines()[1]
    assertions = [f["client_assertion"] for f in server.token_forms]
    secrets = [key_body, SECRET, "static-token-value", *server.issued, *assertions]
    shown = [repr(sb), str(sb), repr(cc), str(cc), repr(bearer), str(bearer)]
    shown += [str(fhir_error.value), repr(fhir_error.value), str(auth_error.value)]
    shown += [caplog.text] + [repr(vars(r)) for r in caplog.records]
    assert server.issued  # tokens were really handed out
    assert caplog.records  # and something was logged
    for secret in secrets:
        for text in shown:
            assert secret not in text
    assert "<secret>" in repr(sb)
    assert "<secret>" in repr(vars(cc))
