"""Writes: create (conditional or not), update (version-aware or not), conditional update,
delete, and what the server said about each (:class:`WriteResult`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from ._core import ClientCore
from ._wire import (
    RESOURCE_TYPE,
    Json,
    checked_id,
    conditional_query,
    fhir_body,
    instance_path,
    type_of,
)


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


class Writes(ClientCore):
    """``create``, ``update``, ``conditional_update`` and ``delete``."""

    async def create(self, resource: Json, if_none_exist: str | None = None) -> WriteResult:
        """``POST Type``; with ``if_none_exist`` (``identifier=sys|val``) a conditional create
        that the server answers 200 (``created=False``) when one already matches."""
        resource_type = type_of(resource)
        headers = {}
        if if_none_exist is not None:
            await self._require(resource_type, "create", conditional=True)
            headers["If-None-Exist"] = conditional_query(if_none_exist, resource_type)
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
        resource_type = type_of(resource)
        resource_id = resource.get("id")
        if not isinstance(resource_id, str):
            raise ValueError("update needs a resource with an id")
        await self._require(resource_type, "update")
        response = await self._send(
            "PUT",
            f"{self.base_url}/{resource_type}/{checked_id(resource_id)}",
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
        resource_type = type_of(resource)
        await self._require(resource_type, "update", conditional=True)
        response = await self._send(
            "PUT",
            f"{self.base_url}/{resource_type}?{conditional_query(query, resource_type)}",
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
            f"{self.base_url}/{instance_path(resource_type, resource_id)}",
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
    body = fhir_body(response, False, response.request.method, "", resource_type)
    resource = (
        body if isinstance(body, dict) and body.get("resourceType") == resource_type else None
    )
    location = response.headers.get("Location") or response.headers.get("Content-Location")
    etag = response.headers.get("ETag")
    _, rid, version = parse_location(location)
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


def parse_location(location: str | None) -> tuple[str | None, str | None, str | None]:
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
    if len(parts) >= 2 and RESOURCE_TYPE.fullmatch(parts[-2]):
        return parts[-2], parts[-1], version
    return None, None, version


def _http_date_instant(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).astimezone(UTC).isoformat()
    except (TypeError, ValueError, IndexError):
        return None
