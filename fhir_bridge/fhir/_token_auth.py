"""Token-based auth: a cached access token, fetched in the auth flow and renewed once on 401.

Token and discovery requests are sub-requests of the auth flow, so they go through the
client's transport (a test's mock transport included). Tokens are cached until shortly before
they expire; a 401 from the FHIR server triggers one fresh token and one resend, never more.
No ``repr``, log line or error message holds a secret, key or token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

import httpx

from fhir_bridge.errors import AuthError

from ._secrets import Secret

log = logging.getLogger("fhir_bridge.fhir")

TokenFlow = Generator[httpx.Request, httpx.Response, None]
_DEFAULT_EXPIRES_IN = 300.0


class TokenAuth(httpx.Auth):
    """Shared machinery: cache a token, fetch it in the flow, renew it once on 401."""

    requires_response_body = True

    def __init__(
        self, *, clock: Callable[[], float], refresh_margin: float, connection: str | None = None
    ) -> None:
        self.connection = connection
        """The connection these credentials are for: named in every AuthError."""
        self._clock = clock
        self._refresh_margin = refresh_margin
        self._token: Secret | None = None
        self._expires_at = 0.0
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def _token_flow(self) -> TokenFlow:  # pragma: no cover - abstract
        raise NotImplementedError
        yield

    def _fresh(self) -> bool:
        return self._token is not None and self._clock() < self._expires_at

    def _apply(self, request: httpx.Request) -> Secret | None:
        token = self._token
        if token is not None:
            request.headers["Authorization"] = f"Bearer {token.reveal()}"
        return token

    def _stale_after_401(self, used: Secret | None) -> bool:
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
        body = response_json(response)
        if response.status_code != 200:
            fields = body if isinstance(body, dict) else {}
            error, description = fields.get("error"), fields.get("error_description")
            raise self._error(
                "token endpoint refused the request",
                status=response.status_code,
                error=error if isinstance(error, str) else None,
                description=description if isinstance(description, str) else None,
            )
        if not isinstance(body, dict):
            raise self._error("token endpoint answered without JSON", status=response.status_code)
        token = body.get("access_token")
        token_type = str(body.get("token_type") or "bearer")
        if not isinstance(token, str) or not token:
            raise self._error("token endpoint answered without access_token")
        if token_type.lower() != "bearer":
            raise self._error(f"token endpoint gave an unsupported token_type {token_type[:20]!r}")
        raw_expires = body.get("expires_in")
        expires_in = (
            float(raw_expires) if isinstance(raw_expires, int | float) else _DEFAULT_EXPIRES_IN
        )
        lifetime = max(expires_in - self._refresh_margin, expires_in / 2)
        self._token = Secret(token)
        self._expires_at = self._clock() + lifetime
        log.info(
            "access token obtained",
            extra={"action": "fhir.token", "expires_in": expires_in},
        )

    def _error(
        self,
        reason: str,
        *,
        status: int | None = None,
        error: str | None = None,
        description: str | None = None,
    ) -> AuthError:
        return AuthError(
            reason, status=status, error=error, description=description, connection=self.connection
        )


def response_json(response: httpx.Response) -> Any:
    """The JSON of a token or discovery answer, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def _send(flow: TokenFlow, response: httpx.Response) -> httpx.Request | None:
    try:
        return flow.send(response)
    except StopIteration:
        return None
