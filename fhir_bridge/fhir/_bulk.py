"""FHIR Bulk Data export (``$export``): kick-off, polling, NDJSON files read line by line.

The flow (Bulk Data Access IG 2.0): a kick-off with ``Prefer: respond-async`` answers 202
and a status URL in ``Content-Location``; polling it answers 202 (with ``Retry-After``, or
our own growing pause) while the job runs and 200 with a manifest when it is done; each
output file is NDJSON, read here a line at a time so memory does not grow with its size;
a DELETE on the status URL lets the server drop the job and its files.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from fhir_bridge.errors import (
    BridgeError,
    BulkExportFailed,
    FhirStatusError,
    FhirTransportError,
    MalformedResponse,
    ResourceNotFound,
)

from ._core import ClientCore
from ._retry import parse_retry_after
from ._wire import FHIR_JSON, Json, checked_type

log = logging.getLogger("fhir_bridge.fhir")

NDJSON = "application/fhir+ndjson"
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ExportFile:
    """One output file of a finished export: its resource type and where to read it."""

    type: str
    url: str
    count: int | None = None


@dataclass(frozen=True, slots=True)
class ExportManifest:
    """What a finished export produced (``transactionTime``: what it holds is as of then)."""

    transaction_time: str | None
    output: tuple[ExportFile, ...]
    error: tuple[ExportFile, ...]
    requires_access_token: bool

    @classmethod
    def from_json(cls, body: Any) -> ExportManifest:
        if not isinstance(body, dict) or not isinstance(body.get("output", []), list):
            raise MalformedResponse("the export's status answer is not a manifest")

        def files(key: str) -> tuple[ExportFile, ...]:
            out = []
            for item in body.get(key) or []:
                if isinstance(item, dict) and isinstance(item.get("url"), str):
                    count = item.get("count")
                    out.append(
                        ExportFile(
                            str(item.get("type") or ""),
                            item["url"],
                            count if isinstance(count, int) else None,
                        )
                    )
            return tuple(out)

        time_ = body.get("transactionTime")
        return cls(
            time_ if isinstance(time_, str) else None,
            files("output"),
            files("error"),
            bool(body.get("requiresAccessToken", False)),
        )


class BulkExport(ClientCore):
    """``export_start``, ``export_wait``, ``export_lines`` and ``export_delete``."""

    async def export_start(
        self,
        level: str = "Patient",
        *,
        types: Sequence[str] = (),
        since: str | None = None,
        patients: Sequence[str] = (),
    ) -> str:
        """Kick an export off; the status URL to poll.

        ``level``: ``system`` (``[base]/$export``), ``Patient`` (every patient's
        compartment) or ``Group/<id>``. ``patients`` (``Patient/<id>`` references, Patient
        level only) narrows it to those patients: then the kick-off is a POST of a
        Parameters resource, since a panel's worth of ids does not fit in a URL.
        """
        if level == "system":
            path = "$export"
        elif level == "Patient" or level.startswith("Group/"):
            path = f"{level}/$export"
        else:
            raise ValueError(f"export level {level!r}: system, Patient or Group/<id>")
        headers = {"Prefer": "respond-async", "Accept": FHIR_JSON}
        params: dict[str, str] = {"_outputFormat": NDJSON}
        if types:
            params["_type"] = ",".join(checked_type(t) for t in types)
        if since:
            params["_since"] = since
        url = self._absolute(path)
        if patients:
            if level != "Patient":
                raise ValueError("patients narrow a Patient-level export only")
            body = {
                "resourceType": "Parameters",
                "parameter": [{"name": k, "valueString": v} for k, v in params.items()]
                + [{"name": "patient", "valueReference": {"reference": p}} for p in patients],
            }
            response = await self._send("POST", url, body=body, headers=headers, safe=False)
        else:
            response = await self._send("GET", url, params=params, headers=headers, safe=False)
        status_url = str(response.headers.get("Content-Location") or "")
        if response.status_code != 202 or not status_url:
            raise MalformedResponse(
                "the export kick-off was not accepted asynchronously (202, Content-Location)",
                status=response.status_code,
                method=response.request.method,
                path=path,
            )
        log.info(
            "export started", extra={"action": "fhir.export", "level": level.partition("/")[0]}
        )
        return status_url

    async def export_wait(
        self,
        status_url: str,
        *,
        timeout: float = 3600.0,
        first_pause: float = 1.0,
        longest_pause: float = 60.0,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> ExportManifest:
        """Poll the status URL until the manifest is there.

        Waits as long as ``Retry-After`` says (a 202's, or a 429's or 5xx's), else a pause
        that doubles from ``first_pause`` up to ``longest_pause``. A 4xx other than 429, or
        an error answer in the job's place, raises :class:`BulkExportFailed`; so does a job
        not done within ``timeout`` seconds.
        """
        deadline = clock() + timeout
        pause = first_pause
        polls = 0
        while True:
            polls += 1
            said: float | None
            try:
                response = await self._send("GET", self._absolute(status_url), safe=True)
            except FhirStatusError as exc:
                if exc.permanent:
                    raise BulkExportFailed(
                        "the export job failed", status=exc.status, polls=polls
                    ) from exc
                said = exc.retry_after  # 429 / 5xx: the client's own retries are spent
            except FhirTransportError:
                said = None
            else:
                if response.status_code == 200:
                    manifest = ExportManifest.from_json(_json(response))
                    log.info(
                        "export done",
                        extra={
                            "action": "fhir.export",
                            "count": len(manifest.output),
                            "polls": polls,
                        },
                    )
                    return manifest
                said = parse_retry_after(response.headers.get("Retry-After"), time.time())
            wait = min(said, longest_pause) if said is not None else pause
            if said is None:
                pause = min(pause * 2, longest_pause)
            if clock() + wait > deadline:
                raise BulkExportFailed("the export job did not finish in time", polls=polls)
            await sleep(wait)

    async def export_lines(
        self, file: ExportFile, *, requires_access_token: bool = True
    ) -> AsyncGenerator[Json, None]:
        """The resources of one output file, one NDJSON line at a time (streamed)."""
        if self._same_server(file.url):
            client, close = self._http, False
        elif not requires_access_token:
            # on another host (a storage bucket): our credentials must not go there
            client, close = httpx.AsyncClient(timeout=self._http.timeout), True
        else:
            raise MalformedResponse(
                "an export file needs our token but lives on another server",
                resource_type=file.type or None,
            )
        path = self._path(file.url)
        try:
            async with (
                self._semaphore,
                client.stream("GET", file.url, headers={"Accept": NDJSON}) as response,
            ):
                if response.status_code >= 400:
                    await response.aread()
                    raise BulkExportFailed(
                        f"export file {path} could not be read", status=response.status_code
                    )
                number = 0
                async for line in response.aiter_lines():
                    number += 1
                    if not line.strip():
                        continue
                    yield _resource(line, path, number, file.type)
        except httpx.TransportError as exc:
            raise FhirTransportError(
                type(exc).__name__, "GET", path, resource_type=file.type or None
            ) from None
        finally:
            if close:
                await client.aclose()

    async def export_delete(self, status_url: str) -> None:
        """Let the server drop the job and its files (a job already gone is fine)."""
        try:
            await self._send("DELETE", self._absolute(status_url), safe=True)
        except ResourceNotFound:
            pass
        except BridgeError as exc:  # the job's files expire on their own: say so, go on
            log.warning(
                "export job not deleted",
                extra={"action": "fhir.export", "error_type": type(exc).__name__},
            )


def _json(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        raise MalformedResponse(
            "the export's status answer is not JSON", status=response.status_code
        ) from None


def _resource(line: str, path: str, number: int, resource_type: str) -> Json:
    try:
        resource = json.loads(line)
    except json.JSONDecodeError:
        raise MalformedResponse(f"{path} line {number}: not JSON") from None
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise MalformedResponse(f"{path} line {number}: not a FHIR resource")
    if resource_type and resource["resourceType"] != resource_type:
        raise MalformedResponse(
            f"{path} line {number}: a {resource['resourceType']} in the {resource_type} file"
        )
    return resource
