"""The FHIR R4 REST client: one pooled httpx client, bounded concurrency, safe retries."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from fhir_bridge.errors import FhirError, FhirTransportError, MalformedResponse, OperationOutcome

from ._capabilities import ServerCapabilities
from ._outcome import parse_outcome, status_error
from ._retry import RetryPolicy, is_safe_to_repeat, parse_retry_after

log = logging.getLogger("fhir_bridge.fhir")

Json = dict[str, Any]
Params = Mapping[str, str | int | Sequence[str]] | Sequence[tuple[str, str]]
_Query = list[tuple[str, str | int | float | bool | None]]
FHIR_JSON = "application/fhir+json"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEFAULT_RETRY = RetryPolicy()
PREFER_REPRESENTATION = "return=representation"

_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
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


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a create, update or delete did.

    ``resource`` is None when the server sent none (``Prefer: return=minimal``, deletes).
    ``version_id`` comes from Location, else ETag (``W/"3"`` -> ``"3"``), else meta.
    ``last_modified`` is a FHIR instant: ``meta.lastUpdated``, else the Last-Modified header.
    ``created`` is True for 201 only (a conditional create that matched answers 200).
    """

    status: int
    resource_type: str
    id: str | None
    version_id: str | None
    etag: str | None
    last_modified: str | None
    location: str | None
    created: bool
    resource: Json | None


@dataclass(frozen=True, slots=True)
class EntryResult:
    """One entry of a transaction-response or batch-response Bundle."""

    index: int
    status: int
    location: str | None
    etag: str | None
    last_modified: str | None
    resource_type: str | None
    id: str | None
    version_id: str | None
    resource: Json | None
    outcome: OperationOutcome

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class FhirClient:
    """An async FHIR R4 client; use ``async with FhirClient(base_url) as fhir: ...``.

    Every request carries ``Accept: application/fhir+json``; at most ``max_in_flight`` are in
    flight at once; those safe to repeat are retried by ``retry`` (a bare POST create never
    is). With ``check_capabilities`` the server's CapabilityStatement is consulted (once)
    before each interaction and :class:`NotSupportedByServer` raised instead of sending.
    """

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

    def __repr__(self) -> str:
        return f"FhirClient({self.base_url!r}, max_in_flight={self.max_in_flight})"

    # --- low level -----------------------------------------------------------------------

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
        return FhirResponse(response.status_code, response.headers, _body(response, False))

    # --- capabilities and reads ----------------------------------------------------------

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

    async def read(self, resource_type: str, resource_id: str) -> Json:
        await self._require(resource_type, "read")
        return await self._get_json(
            f"{_type(resource_type)}/{_id(resource_id)}", resource_type, resource_type
        )

    async def vread(self, resource_type: str, resource_id: str, version_id: str) -> Json:
        await self._require(resource_type, "vread")
        path = f"{_type(resource_type)}/{_id(resource_id)}/_history/{_id(version_id)}"
        return await self._get_json(path, resource_type, resource_type)

    async def search_bundles(
        self, resource_type: str, params: Params | None = None
    ) -> AsyncGenerator[Json, None]:
        """Each searchset page in turn, following ``next`` links exactly as given."""
        await self._require(resource_type, "search-type")
        async for page in self._pages(
            f"{self.base_url}/{_type(resource_type)}", params, resource_type
        ):
            yield page

    async def search(
        self, resource_type: str, params: Params | None = None, *, include: bool = False
    ) -> AsyncGenerator[Json, None]:
        """The matching resources of every page (with ``include``, ``_include``d ones too),
        holding one page in memory at a time."""
        count = 0
        async for page in self.search_bundles(resource_type, params):
            for entry in page.get("entry") or []:
                resource = entry.get("resource") if isinstance(entry, dict) else None
                mode = ((entry.get("search") or {}).get("mode") or "match") if resource else None
                if isinstance(resource, dict) and (
                    mode == "match" or (include and mode == "include")
                ):
                    count += 1
                    yield resource
        log.info(
            "search done",
            extra={"action": "fhir.search", "resource_type": resource_type, "count": count},
        )

    async def history(
        self,
        resource_type: str | None = None,
        resource_id: str | None = None,
        *,
        since: datetime | str | None = None,
        count: int | None = None,
    ) -> AsyncGenerator[Json, None]:
        """The entries of a history Bundle, page by page (a deletion has no ``resource``; its
        ``request.method`` is DELETE). System, type or instance history by the arguments."""
        if resource_type is None:
            if resource_id is not None:
                raise ValueError("resource_id needs resource_type")
            await self._require(None, "history-system")
            url = f"{self.base_url}/_history"
        elif resource_id is None:
            await self._require(resource_type, "history-type")
            url = f"{self.base_url}/{_type(resource_type)}/_history"
        else:
            await self._require(resource_type, "history-instance")
            url = f"{self.base_url}/{_type(resource_type)}/{_id(resource_id)}/_history"
        params: dict[str, str] = {}
        if since is not None:
            params["_since"] = _instant(since)
        if count is not None:
            params["_count"] = str(count)
        async for page in self._pages(url, params, resource_type):
            for entry in page.get("entry") or []:
                if isinstance(entry, dict):
                    yield entry

    # --- writes --------------------------------------------------------------------------

    async def create(self, resource: Json, if_none_exist: str | None = None) -> WriteResult:
        """``POST Type``; with ``if_none_exist`` (``identifier=sys|val``) a conditional create
        that the server answers 200 (``created=False``) when one already matches."""
        resource_type = _type_of(resource)
        headers = {}
        if if_none_exist is not None:
            await self._require(resource_type, "create", conditional=True)
            headers["If-None-Exist"] = _query(if_none_exist, resource_type)
        else:
            await self._require(resource_type, "create")
        response = await self._send(
            "POST",
            f"{self.base_url}/{resource_type}",
            body=resource,
            headers=headers,
            resource_type=resource_type,
            write=True,
        )
        return _write_result(response, resource_type, None)

    async def update(self, resource: Json, if_match: str | None = None) -> WriteResult:
        """``PUT Type/id``; ``if_match`` (a version id, or an ETag) makes it version-aware."""
        resource_type = _type_of(resource)
        resource_id = resource.get("id")
        if not isinstance(resource_id, str):
            raise ValueError("update needs a resource with an id")
        await self._require(resource_type, "update")
        response = await self._send(
            "PUT",
            f"{self.base_url}/{resource_type}/{_id(resource_id)}",
            body=resource,
            headers=_if_match_header(if_match),
            resource_type=resource_type,
            write=True,
        )
        return _write_result(response, resource_type, resource_id)

    async def conditional_update(
        self, resource: Json, query: str, if_match: str | None = None
    ) -> WriteResult:
        """``PUT Type?query``: creates when nothing matches, updates the one match, and the
        server refuses (412) when several match."""
        resource_type = _type_of(resource)
        await self._require(resource_type, "update", conditional=True)
        response = await self._send(
            "PUT",
            f"{self.base_url}/{resource_type}?{_query(query, resource_type)}",
            body=resource,
            headers=_if_match_header(if_match),
            resource_type=resource_type,
            write=True,
        )
        return _write_result(response, resource_type, None)

    async def delete(self, resource_type: str, resource_id: str) -> WriteResult:
        await self._require(resource_type, "delete")
        response = await self._send(
            "DELETE",
            f"{self.base_url}/{_type(resource_type)}/{_id(resource_id)}",
            resource_type=resource_type,
        )
        result = _write_result(response, resource_type, resource_id)
        return WriteResult(
            result.status,
            resource_type,
            resource_id,
            result.version_id,
            result.etag,
            result.last_modified,
            result.location,
            False,
            None,
        )

    async def transaction(self, bundle: Json) -> Json:
        """POST a transaction Bundle; all entries apply or none (an error raises).

        Returns the transaction-response Bundle (read it with :func:`entry_results`).
        """
        return await self._post_bundle(bundle, "transaction")

    async def batch(self, bundle: Json) -> Json:
        """POST a batch Bundle; entries succeed or fail one by one, so read the returned
        batch-response with :func:`entry_results` for per-entry status and OperationOutcome."""
        return await self._post_bundle(bundle, "batch")

    # --- machinery -----------------------------------------------------------------------

    async def _post_bundle(self, bundle: Json, kind: str) -> Json:
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != kind:
            raise ValueError(f"expected a Bundle of type {kind}")
        await self._require(None, kind)
        response = await self._send(
            "POST", self.base_url, body=bundle, resource_type="Bundle", write=True
        )
        body: Json = _body(response, True, "POST", "", "Bundle")
        if body.get("resourceType") != "Bundle" or body.get("type") != f"{kind}-response":
            raise MalformedResponse(
                f"expected a {kind}-response Bundle",
                status=response.status_code,
                method="POST",
                resource_type="Bundle",
            )
        failed = sum(1 for e in entry_results(body) if not e.ok)
        log.info(
            "%s done",
            kind,
            extra={
                "action": f"fhir.{kind}",
                "count": len(body.get("entry") or []),
                "failed": failed,
            },
        )
        return body

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
        body: Json = _body(response, True, "GET", _shown(path), resource_type)
        if body.get("resourceType") != expect:
            raise MalformedResponse(
                f"expected a {expect}",
                status=response.status_code,
                method="GET",
                path=_shown(path),
                resource_type=resource_type,
            )
        return body

    async def _pages(
        self, url: str, params: Params | None, resource_type: str | None
    ) -> AsyncGenerator[Json, None]:
        seen: set[str] = set()
        next_url: str | None = url
        pages = 0
        while next_url is not None:
            response = await self._send(
                "GET",
                next_url,
                params=params,
                headers={"Cache-Control": "no-cache"},
                resource_type=resource_type,
            )
            path = self._path(next_url)
            page = _body(response, True, "GET", path, resource_type)
            if page.get("resourceType") != "Bundle":
                raise MalformedResponse(
                    "expected a Bundle", method="GET", path=path, resource_type=resource_type
                )
            link = _next_link(page)
            pages += 1
            yield page
            del page  # hold one page at a time
            params = None
            if link is None:
                break
            next_url = self._resolve_link(link, resource_type)
            if next_url in seen:
                raise MalformedResponse(
                    f"the next link of page {pages} repeats an earlier page",
                    method="GET",
                    path=path,
                    resource_type=resource_type,
                )
            seen.add(next_url)
        log.debug(
            "pages read",
            extra={"action": "fhir.pages", "resource_type": resource_type, "count": pages},
        )

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
            async for attempt in self.retry.retrying(safe=safe):
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
            method, url, params=_query_params(params), content=content, headers=headers
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
                parse_outcome(_json_or_none(response)),
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


def entry_results(response: Json) -> list[EntryResult]:
    """Each entry of a transaction-response or batch-response: status, ids, OperationOutcome."""
    results = []
    for index, raw in enumerate(response.get("entry") or []):
        entry: Json = raw if isinstance(raw, dict) else {}
        answer: Json = entry["response"] if isinstance(entry.get("response"), dict) else {}
        status_text = str(answer.get("status") or "")
        status = int(status_text[:3]) if status_text[:3].isdigit() else 0
        resource = entry.get("resource") if isinstance(entry.get("resource"), dict) else None
        location = answer.get("location") if isinstance(answer.get("location"), str) else None
        etag = answer.get("etag") if isinstance(answer.get("etag"), str) else None
        rtype, rid, version = _parse_location(location)
        if resource is not None and resource.get("resourceType") != "OperationOutcome":
            rtype = rtype or resource.get("resourceType")
            rid = rid or resource.get("id")
            version = version or (resource.get("meta") or {}).get("versionId")
        outcome = parse_outcome(answer.get("outcome"))
        if not outcome.issues and resource is not None:
            outcome = parse_outcome(resource)
        results.append(
            EntryResult(
                index=index,
                status=status,
                location=location,
                etag=etag,
                last_modified=answer.get("lastModified"),
                resource_type=rtype,
                id=rid,
                version_id=version or version_of_etag(etag),
                resource=(
                    resource
                    if resource is not None and resource.get("resourceType") != "OperationOutcome"
                    else None
                ),
                outcome=outcome,
            )
        )
    return results


def version_of_etag(etag: str | None) -> str | None:
    """The version in an ETag: ``W/"3"`` -> ``"3"``."""
    if not etag:
        return None
    value = etag.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"') or None


def if_match_value(version: str) -> str:
    """An If-Match header value: a bare version id becomes ``W/"n"``; an ETag is kept."""
    version = version.strip()
    if version.startswith(('W/"', '"')):
        return version
    return f'W/"{version}"'


def _if_match_header(if_match: str | None) -> dict[str, str]:
    return {"If-Match": if_match_value(if_match)} if if_match else {}


def _write_result(
    response: httpx.Response, resource_type: str, known_id: str | None
) -> WriteResult:
    body = _body(response, False, response.request.method, "", resource_type)
    resource = (
        body if isinstance(body, dict) and body.get("resourceType") == resource_type else None
    )
    location = response.headers.get("Location") or response.headers.get("Content-Location")
    etag = response.headers.get("ETag")
    _, rid, version = _parse_location(location)
    meta = (resource or {}).get("meta") or {}
    last_modified = meta.get("lastUpdated") or _http_date_instant(
        response.headers.get("Last-Modified")
    )
    return WriteResult(
        status=response.status_code,
        resource_type=resource_type,
        id=rid or (resource or {}).get("id") or known_id,
        version_id=version or version_of_etag(etag) or meta.get("versionId"),
        etag=etag,
        last_modified=last_modified,
        location=location,
        created=response.status_code == 201,
        resource=resource,
    )


def _parse_location(location: str | None) -> tuple[str | None, str | None, str | None]:
    """(type, id, version) from ``[base/]Type/id[/_history/vid]``."""
    if not location:
        return None, None, None
    parts = [p for p in urlsplit(location).path.split("/") if p]
    if "_history" in parts:
        at = parts.index("_history")
        version = parts[at + 1] if at + 1 < len(parts) else None
        parts = parts[:at]
    else:
        version = None
    if len(parts) >= 2 and _TYPE.fullmatch(parts[-2]):
        return parts[-2], parts[-1], version
    return None, None, version


def _body(
    response: httpx.Response,
    required: bool,
    method: str = "",
    path: str = "",
    resource_type: str | None = None,
) -> Any:
    """The JSON object of a success answer; MalformedResponse if it is something else."""
    if not response.content:
        if required:
            raise MalformedResponse(
                "empty body",
                status=response.status_code,
                method=method,
                path=path,
                resource_type=resource_type,
            )
        return None
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip() or "no type"
    try:
        body = json.loads(response.content)
    except ValueError:
        raise MalformedResponse(
            f"body is {content_type}, not FHIR JSON",
            status=response.status_code,
            method=method,
            path=path,
            resource_type=resource_type,
        ) from None
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise MalformedResponse(
            "body is JSON but not a FHIR resource",
            status=response.status_code,
            method=method,
            path=path,
            resource_type=resource_type,
        )
    return body


def _query_params(params: Params | None) -> _Query | None:
    """Search parameters as (name, value) pairs; a sequence value repeats the name (AND)."""
    if params is None:
        return None
    items = params.items() if isinstance(params, Mapping) else params
    pairs: _Query = []
    for name, value in items:
        if isinstance(value, str | int):
            pairs.append((name, str(value)))
        else:
            pairs.extend((name, str(v)) for v in value)
    return pairs


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content) if response.content else None
    except ValueError:
        return None


def _next_link(bundle: Json) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None


def _type(resource_type: str) -> str:
    if not _TYPE.fullmatch(resource_type):
        raise ValueError(f"not a FHIR resource type: {resource_type[:40]!r}")
    return resource_type


def _id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError("not a FHIR id (letters, digits, '-', '.', at most 64)")
    return value


def _type_of(resource: Json) -> str:
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise ValueError("resource has no resourceType")
    return _type(resource_type)


def _query(query: str, resource_type: str) -> str:
    """A search query without a leading ``?`` or ``Type?``."""
    query = query.strip()
    if query.startswith(f"{resource_type}?"):
        query = query[len(resource_type) + 1 :]
    query = query.lstrip("?")
    if not query:
        raise ValueError("empty conditional query")
    return query


def _shown(path: str) -> str:
    return path.split("?", maxsplit=1)[0]


def _instant(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    return value.isoformat()


def _http_date_instant(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).astimezone(UTC).isoformat()
    except (TypeError, ValueError, IndexError):
        return None
