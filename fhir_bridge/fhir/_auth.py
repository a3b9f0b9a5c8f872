"""Authentication as ``httpx.Auth``: static bearer tokens, OAuth client credentials, and
SMART Backend Services (client assertion JWT).

Token and discovery requests are sub-requests of the auth flow, so they go through the
client's transport (a test's mock transport included). Tokens are cached until shortly before
they expire; a 401 from the FHIR server triggers one fresh token and one resend, never more.
No ``repr``, log line or error message holds a secret, key or token.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Generator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from fhir_bridge.errors import AuthError, InputError

log = logging.getLogger("fhir_bridge.fhir")

Algorithm = Literal["RS384", "ES384"]
AuthKind = Literal["none", "bearer", "client-credentials", "smart-backend"]
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME = 300.0
_DEFAULT_EXPIRES_IN = 300.0
TokenFlow = Generator[httpx.Request, httpx.Response, None]


class _Secret:
    """A string that does not show itself in ``repr``, tracebacks with locals, or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


def secret_from_env(name: str) -> str:
    """The value of environment variable ``name``; InputError (naming only the variable) if
    it is unset or empty."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise InputError(f"${name}", "environment variable is not set")
    return value


def secret_from_file(path: str | Path) -> str:
    """The text of a secret or key file, stripped; InputError if it cannot be read."""
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InputError(str(path), f"cannot read secret file ({type(exc).__name__})") from None
    if not value:
        raise InputError(str(path), "secret file is empty")
    return value


class BearerToken(httpx.Auth):
    """A fixed access token sent as ``Authorization: Bearer ...``."""

    def __init__(self, token: str) -> None:
        if not token.strip():
            raise ValueError("empty bearer token")
        self._token = _Secret(token.strip())

    @classmethod
    def from_env(cls, name: str) -> BearerToken:
        return cls(secret_from_env(name))

    @classmethod
    def from_file(cls, path: str | Path) -> BearerToken:
        return cls(secret_from_file(path))

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.reveal()}"
        yield request

    def __repr__(self) -> str:
        return "BearerToken(<secret>)"


class _TokenAuth(httpx.Auth):
    """Shared machinery: cache a token, fetch it in the flow, renew it once on 401."""

    requires_response_body = True

    def __init__(self, *, clock: Callable[[], float], refresh_margin: float) -> None:
        self._clock = clock
        self._refresh_margin = refresh_margin
        self._token: _Secret | None = None
        self._expires_at = 0.0
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def _token_flow(self) -> TokenFlow:  # pragma: no cover - abstract
        raise NotImplementedError
        yield

    def _fresh(self) -> bool:
        return self._token is not None and self._clock() < self._expires_at

    def _apply(self, request: httpx.Request) -> _Secret | None:
        token = self._token
        if token is not None:
            request.headers["Authorization"] = f"Bearer {token.reveal()}"
        return token

    def _stale_after_401(self, used: _Secret | None) -> bool:
        """Whether the token that got a 401 is still the cached one (else someone renewed)."""
        if self._token is used:
            self._token = None
            return True
        return not self._fresh()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not self._fresh():
            yield from self._token_flow()
        used = self._apply(request)
        response = yield request
        if response.status_code == 401:
            if self._stale_after_401(used):
                yield from self._token_flow()
            self._apply(request)
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # As auth_flow, with token fetches serialised so concurrent requests share one token.
        async with self._async_lock():
            flow = None if self._fresh() else self._token_flow()
            sub = next(flow, None) if flow else None
            while flow is not None and sub is not None:
                response = yield sub
                await response.aread()
                sub = _send(flow, response)
        used = self._apply(request)
        response = yield request
        if response.status_code != 401:
            return
        async with self._async_lock():
            flow = self._token_flow() if self._stale_after_401(used) else None
            sub = next(flow, None) if flow else None
            while flow is not None and sub is not None:
                response = yield sub
                await response.aread()
                sub = _send(flow, response)
        self._apply(request)
        yield request

    def _async_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    def _store_token(self, response: httpx.Response) -> None:
        body = _json(response)
        if response.status_code != 200:
            error = body.get("error") if isinstance(body, dict) else None
            raise AuthError(
                "token endpoint refused the request",
                status=response.status_code,
                error=error if isinstance(error, str) else None,
            )
        if not isinstance(body, dict):
            raise AuthError("token endpoint answered without JSON", status=response.status_code)
        token = body.get("access_token")
        token_type = str(body.get("token_type") or "bearer")
        if not isinstance(token, str) or not token:
            raise AuthError("token endpoint answered without access_token")
        if token_type.lower() != "bearer":
            raise AuthError(f"token endpoint gave an unsupported token_type {token_type[:20]!r}")
        raw_expires = body.get("expires_in")
        expires_in = (
            float(raw_expires) if isinstance(raw_expires, int | float) else _DEFAULT_EXPIRES_IN
        )
        lifetime = max(expires_in - self._refresh_margin, expires_in / 2)
        self._token = _Secret(token)
        self._expires_at = self._clock() + lifetime
        log.info(
            "access token obtained",
            extra={"action": "fhir.token", "expires_in": expires_in},
        )


class ClientCredentials(_TokenAuth):
    """OAuth 2.0 client credentials grant with a client secret (basic or post)."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        *,
        method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic",
        clock: Callable[[], float] = time.time,
        refresh_margin: float = 30.0,
    ) -> None:
        super().__init__(clock=clock, refresh_margin=refresh_margin)
        if method not in ("client_secret_basic", "client_secret_post"):
            raise ValueError("method must be client_secret_basic or client_secret_post")
        self.token_url = token_url
        self.client_id = client_id
        self.scope = scope
        self.method = method
        self._secret = _Secret(client_secret)

    def _token_flow(self) -> TokenFlow:
        data = {"grant_type": "client_credentials"}
        if self.scope:
            data["scope"] = self.scope
        headers = {"Accept": "application/json"}
        if self.method == "client_secret_post":
            data["client_id"] = self.client_id
            data["client_secret"] = self._secret.reveal()
        else:  # RFC 6749 2.3.1: form-encode both parts before base64
            pair = f"{quote(self.client_id, safe='')}:{quote(self._secret.reveal(), safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        response = yield httpx.Request("POST", self.token_url, data=data, headers=headers)
        self._store_token(response)

    def __repr__(self) -> str:
        return (
            f"ClientCredentials(token_url={self.token_url!r}, client_id={self.client_id!r}, "
            f"method={self.method!r}, client_secret=<secret>)"
        )


class SmartBackendServices(_TokenAuth):
    """SMART Backend Services: a signed JWT client assertion (RS384 or ES384) for a token.

    Give ``token_url``, or ``fhir_base_url`` to discover it once from
    ``[base]/.well-known/smart-configuration``.
    """

    def __init__(
        self,
        *,
        client_id: str,
        private_key_pem: str | bytes,
        key_id: str,
        scope: str,
        algorithm: Algorithm = "RS384",
        fhir_base_url: str | None = None,
        token_url: str | None = None,
        jku: str | None = None,
        clock: Callable[[], float] = time.time,
        assertion_lifetime: float = 240.0,
        refresh_margin: float = 30.0,
    ) -> None:
        super().__init__(clock=clock, refresh_margin=refresh_margin)
        self.client_id = client_id
        self.key_id = key_id
        self.scope = scope
        self.algorithm: Algorithm = algorithm
        self.fhir_base_url = fhir_base_url.rstrip("/") if fhir_base_url else None
        self.token_url = token_url
        self.jku = jku
        self.assertion_lifetime = assertion_lifetime
        if token_url is None and fhir_base_url is None:
            raise ValueError("give token_url or fhir_base_url")
        if algorithm not in ("RS384", "ES384"):
            raise ValueError("algorithm must be RS384 or ES384")
        if not 0 < assertion_lifetime <= MAX_ASSERTION_LIFETIME:
            raise ValueError("assertion_lifetime must be within (0, 300] seconds")
        self._key = _load_key(private_key_pem, algorithm)

    def _token_flow(self) -> TokenFlow:
        if self.token_url is None:
            response = yield httpx.Request(
                "GET",
                f"{self.fhir_base_url}/.well-known/smart-configuration",
                headers={"Accept": "application/json"},
            )
            self.token_url = self._discovered_token_url(response)
        data = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.client_assertion(self.token_url),
            "scope": self.scope,
        }
        response = yield httpx.Request(
            "POST", self.token_url, data=data, headers={"Accept": "application/json"}
        )
        self._store_token(response)

    def client_assertion(self, audience: str) -> str:
        """A freshly signed client assertion JWT for ``audience`` (the token endpoint)."""
        now = self._clock()
        headers: dict[str, Any] = {"kid": self.key_id, "typ": "JWT"}
        if self.jku:
            headers["jku"] = self.jku
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "exp": int(now + self.assertion_lifetime),
            "iat": int(now),
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers=headers)

    def _discovered_token_url(self, response: httpx.Response) -> str:
        body = _json(response)
        if response.status_code != 200 or not isinstance(body, dict):
            raise AuthError("SMART discovery failed", status=response.status_code)
        endpoint = body.get("token_endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            raise AuthError("SMART configuration has no token_endpoint")
        algs = body.get("token_endpoint_auth_signing_alg_values_supported")
        if isinstance(algs, list) and algs and self.algorithm not in algs:
            raise AuthError(f"the server does not accept {self.algorithm} client assertions")
        log.info("token endpoint discovered", extra={"action": "fhir.smart_discovery"})
        return endpoint

    def __repr__(self) -> str:
        where = (
            f"token_url={self.token_url!r}"
            if self.token_url
            else (f"fhir_base_url={self.fhir_base_url!r}")
        )
        return (
            f"SmartBackendServices(client_id={self.client_id!r}, key_id={self.key_id!r}, "
            f"algorithm={self.algorithm!r}, {where}, private_key=<secret>)"
        )


def make_auth(
    kind: AuthKind,
    *,
    base_url: str,
    token_env: str | None = None,
    token_file: str | Path | None = None,
    token_url: str | None = None,
    client_id: str | None = None,
    client_secret_env: str | None = None,
    client_secret_file: str | Path | None = None,
    private_key_file: str | Path | None = None,
    private_key_env: str | None = None,
    key_id: str | None = None,
    algorithm: Algorithm = "RS384",
    scope: str | None = None,
) -> httpx.Auth | None:
    """The auth for a connection's settings (the fields of ``[connections.NAME.auth]``).

    Secrets are named by file or environment variable, read here; a missing one is an
    InputError naming the setting, never showing a value.
    """
    if kind == "none":
        return None
    if kind == "bearer":
        return BearerToken(_secret(token_file, token_env, "token_file or token_env"))
    if client_id is None:
        raise InputError("auth.client_id", f"required for auth kind {kind!r}")
    if kind == "client-credentials":
        if token_url is None:
            raise InputError("auth.token_url", "required for auth kind 'client-credentials'")
        secret = _secret(client_secret_file, client_secret_env, "client_secret_file or _env")
        return ClientCredentials(token_url, client_id, secret, scope)
    if kind == "smart-backend":
        if key_id is None or scope is None:
            raise InputError("auth.key_id/scope", "required for auth kind 'smart-backend'")
        key = _secret(private_key_file, private_key_env, "private_key_file or private_key_env")
        return SmartBackendServices(
            client_id=client_id,
            private_key_pem=key,
            key_id=key_id,
            scope=scope,
            algorithm=algorithm,
            fhir_base_url=base_url,
            token_url=token_url,
        )
    raise InputError("auth.kind", f"unknown auth kind {kind!r}")


def _secret(file: str | Path | None, env: str | None, what: str) -> str:
    if file is not None:
        return secret_from_file(file)
    if env is not None:
        return secret_from_env(env)
    raise InputError("auth", f"{what} is required")


def _load_key(
    pem: str | bytes, algorithm: Algorithm
) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise InputError("private key", "not an unencrypted PEM private key") from None
    if algorithm == "RS384" and isinstance(key, rsa.RSAPrivateKey):
        return key
    if (
        algorithm == "ES384"
        and isinstance(key, ec.EllipticCurvePrivateKey)
        and isinstance(key.curve, ec.SECP384R1)
    ):
        return key
    raise InputError("private key", f"key type does not fit {algorithm}")


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _send(flow: TokenFlow, response: httpx.Response) -> httpx.Request | None:
    try:
        return flow.send(response)
    except StopIteration:
        return None
