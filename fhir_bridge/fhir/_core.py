"""The request/response core of the FHIR client: one pooled httpx client, bounded
concurrency, safe retries, capability checks, and every error status mapped onto the error
tree of :mod:`fhir_bridge.errors`.

The interactions (reads, writes, bundles) are built on :class:`ClientCore` in their own
modules; :class:`~fhir_bridge.fhir.FhirClient` joins them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from fhir_bridge.errors import FhirError, FhirTransportError, MalformedResponse

from ._capabilities import ServerCapabilities
from ._outcome import parse_outcome, status_error
from ._retry import RetryPolicy, is_safe_to_repeat, parse_retry_after
from ._wire import FHIR_JSON, Json, Params, fhir_body, json_or_none, query_params, shown

log = logging.getLogger("fhir_bridge.fhir")

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEFAULT_RETRY = RetryPolicy()
PREFER_REPRESENTATION = "return=representation"
# transport failures after which the same request may simply be sent again
_RETRYABLE_TRANSPORT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True, slots=True)
class RequestEvent:
    """One HTTP exchange, as an observer (metrics) sees it: no URLs, no bodies."""

    method: str
    resource_type: str | None
    status: int  # 0 when no response arrived (timeout, connection refused)
    attempt: int  # 1 for the first try, 2+ for retries
    seconds: float


Observer = Callable[[RequestEvent], None]


@dataclass(frozen=True, slots=True)
class FhirResponse:
    """A successful answer to :meth:`FhirClient.request`; ``body`` is parsed JSON or None."""

    status: int
    headers: httpx.Headers
    body: Any


class ClientCore:
    """Connection, concurrency, retries and capability checks shared by every interaction."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        max_in_flight: int = 8,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        check_capabilities: bool = False,
        prefer: str | None = PREFER_REPRESENTATION,
        observer: Observer | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        split = urlsplit(base_url)
        if split.scheme not in ("http", "https") or not split.netloc:
            raise ValueError("base_url must be an absolute http(s) URL")
        self.base_url = base_url.rstrip("/")
        self.retry = retry
        self.max_in_flight = max_in_flight
        self.check_capabilities = check_capabilities
        self.prefer = prefer
        self.observer = observer
        self._origin = (split.scheme, split.netloc)
        self._semaphore = asyncio.Semaphore(max_in_flight)
        self._capabilities: ServerCapabilities | None = None
        self._http = httpx.AsyncClient(
            auth=auth,
            timeout=timeout,
            transport=transport,
            headers={"Accept": FHIR_JSON, **(headers or {})},
            follow_redirects=False,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def is_closed(self) -> bool:
        return self._http.is_closed

    def __repr__(self) -> str:
        return f"FhirClient({self.base_url!r}, max_in_flight={self.max_in_flight})"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        resource_type: str | None = None,
        safe: bool | None = None,
    ) -> FhirResponse:
        """Send one request (``path`` relative to the base, or an absolute URL on the same
        server); error statuses raise. ``safe`` overrides whether it may be retried."""
        url = self._absolute(path)
        response = await self._send(
            method,
            url,
            params=params,
            body=json_body,
            headers=headers,
            resource_type=resource_type,
            safe=safe,
        )
        return FhirResponse(response.status_code, response.headers, fhir_body(response, False))

    async def capabilities(self) -> ServerCapabilities:
        """The server's CapabilityStatement (``GET /metadata``), fetched once per client."""
        if self._capabilities is None:
            statement = await self._get_json("metadata", None, "CapabilityStatement")
            self._capabilities = ServerCapabilities.from_statement(statement)
            log.info(
                "capabilities read",
                extra={"action": "fhir.capabilities", "count": len(self._capabilities.resources)},
            )
        return self._capabilities

    # --- machinery -----------------------------------------------------------------------

    async def _require(
        self, resource_type: str | None, interaction: str, *, conditional: bool = False
    ) -> None:
        if not self.check_capabilities:
            return
        caps = await self.capabilities()
        caps.require(resource_type, interaction)
        if conditional and resource_type is not None:
            supported = (
                caps.supports_conditional_create(resource_type)
                if interaction == "create"
                else caps.supports_conditional_update(resource_type)
            )
            if not supported:
                caps.require(resource_type, f"conditional-{interaction}")

    async def _get_json(self, path: str, resource_type: str | None, expect: str) -> Json:
        response = await self._send("GET", f"{self.base_url}/{path}", resource_type=resource_type)
        body: Json = fhir_body(response, True, "GET", shown(path), resource_type)
        if body.get("resourceType") != expect:
            raise MalformedResponse(
                f"expected a {expect}",
                status=response.status_code,
                method="GET",
                path=shown(path),
                resource_type=resource_type,
            )
        return body

    async def _send(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        resource_type: str | None = None,
        safe: bool | None = None,
        write: bool = False,
        atomic: bool = False,
    ) -> httpx.Response:
        all_headers = dict(headers or {})
        content = None
        if body is not None:
            content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            all_headers.setdefault("Content-Type", FHIR_JSON)
        if write and self.prefer:
            all_headers.setdefault("Prefer", self.prefer)
        if safe is None:
            safe = is_safe_to_repeat(method, url, all_headers, body)
        path = self._path(url)
        attempts = 0
        try:
            async for attempt in self.retry.retrying(safe=safe, atomic=atomic):
                with attempt:
                    attempts += 1
                    return await self._send_once(
                        method=method,
                        url=url,
                        params=params,
                        content=content,
                        headers=all_headers,
                        path=path,
                        resource_type=resource_type,
                        attempt=attempts,
                    )
        except FhirError as exc:
            exc.attempts = attempts
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def _send_once(
        self,
        *,
        method: str,
        url: str,
        params: Params | None,
        content: bytes | None,
        headers: Mapping[str, str],
        path: str,
        resource_type: str | None,
        attempt: int,
    ) -> httpx.Response:
        request = self._http.build_request(
            method, url, params=query_params(params), content=content, headers=headers
        )
        started = time.perf_counter()
        async with self._semaphore:
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                self._observe(method, resource_type, 0, attempt, started)
                raise FhirTransportError(
                    type(exc).__name__,
                    method,
                    path,
                    resource_type=resource_type,
                    retryable=isinstance(exc, _RETRYABLE_TRANSPORT),
                ) from None
            except httpx.DecodingError:
                raise MalformedResponse(
                    "body could not be decoded",
                    method=method,
                    path=path,
                    resource_type=resource_type,
                ) from None
        status = response.status_code
        self._observe(method, resource_type, status, attempt, started)
        log.debug(
            "%s %s -> %s",
            method,
            path,
            status,
            extra={
                "action": "fhir.request",
                "method": method,
                "resource_type": resource_type,
                "status": status,
                "attempt": attempt,
                "duration_ms": round((time.perf_counter() - started) * 1000),
            },
        )
        if status >= 400:
            raise status_error(
                status,
                parse_outcome(json_or_none(response)),
                parse_retry_after(response.headers.get("Retry-After"), self.retry.clock()),
                method=method,
                path=path,
                resource_type=resource_type,
            )
        if status >= 300:
            raise MalformedResponse(
                f"unexpected redirect ({status})",
                status=status,
                method=method,
                path=path,
                resource_type=resource_type,
            )
        return response

    def _observe(
        self, method: str, resource_type: str | None, status: int, attempt: int, started: float
    ) -> None:
        if self.observer is not None:
            elapsed = time.perf_counter() - started
            self.observer(RequestEvent(method, resource_type, status, attempt, elapsed))

    def _absolute(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            if not self._same_server(path):
                raise ValueError("URL is not on this client's server")
            return path
        return f"{self.base_url}/{path.lstrip('/')}" if path else self.base_url

    def _resolve_link(self, link: str, resource_type: str | None) -> str:
        """A next link as an absolute URL, its text kept exactly as the server gave it."""
        if link.startswith(("http://", "https://")):
            url = link
        elif link.startswith("/"):
            url = f"{self._origin[0]}://{self._origin[1]}{link}"
        elif link.startswith("?"):
            url = f"{self.base_url}{link}"
        else:
            url = f"{self.base_url}/{link}"
        if not self._same_server(url):
            # our credentials must not go to another host
            raise MalformedResponse(
                "the next link points to another server", resource_type=resource_type
            )
        return url

    def _same_server(self, url: str) -> bool:
        split = urlsplit(url)
        return (split.scheme, split.netloc) == self._origin

    def _path(self, url: str) -> str:
        """What to show of a URL in logs and errors: the path under the base, no query."""
        path = urlsplit(url).path
        base_path = urlsplit(self.base_url).path
        if path.startswith(base_path):
            path = path[len(base_path) :]
        return path.strip("/")
