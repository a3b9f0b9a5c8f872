"""What goes on the wire: types and ids safe to put in a URL, search parameters, conditional
queries, and the FHIR JSON bodies that come back."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from fhir_bridge.errors import MalformedResponse

Json = dict[str, Any]
Params = Mapping[str, str | int | Sequence[str]] | Sequence[tuple[str, str]]
Query = list[tuple[str, str | int | float | bool | None]]
FHIR_JSON = "application/fhir+json"

RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def checked_type(resource_type: str) -> str:
    """``resource_type`` if it is a FHIR resource type name, else ValueError."""
    if not RESOURCE_TYPE.fullmatch(resource_type):
        raise ValueError(f"not a FHIR resource type: {resource_type[:40]!r}")
    return resource_type


def checked_id(value: str) -> str:
    """``value`` if it is a FHIR id (nothing that would change the path), else ValueError."""
    if not _ID.fullmatch(value):
        raise ValueError("not a FHIR id (letters, digits, '-', '.', at most 64)")
    return value


def instance_path(resource_type: str, resource_id: str) -> str:
    """``Type/id``, both checked."""
    return f"{checked_type(resource_type)}/{checked_id(resource_id)}"


def type_of(resource: Json) -> str:
    """The checked ``resourceType`` of a resource."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise ValueError("resource has no resourceType")
    return checked_type(resource_type)


def conditional_query(query: str, resource_type: str) -> str:
    """A search query without a leading ``?`` or ``Type?``."""
    query = query.strip()
    if query.startswith(f"{resource_type}?"):
        query = query[len(resource_type) + 1 :]
    query = query.lstrip("?")
    if not query:
        raise ValueError("empty conditional query")
    return query


def query_params(params: Params | None) -> Query | None:
    """Search parameters as (name, value) pairs; a sequence value repeats the name (AND)."""
    if params is None:
        return None
    items = params.items() if isinstance(params, Mapping) else params
    pairs: Query = []
    for name, value in items:
        if isinstance(value, str | int):
            pairs.append((name, str(value)))
        else:
            pairs.extend((name, str(v)) for v in value)
    return pairs


def shown(path: str) -> str:
    """What to show of a relative path in errors: no query."""
    return path.split("?", maxsplit=1)[0]


def instant(value: datetime | str) -> str:
    """A ``_since`` value: a string as given, or a timezone-aware datetime in ISO form."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    return value.isoformat()


def fhir_body(
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


def json_or_none(response: httpx.Response) -> Any:
    """The parsed body of an error answer, or None when it is empty or not JSON."""
    try:
        return json.loads(response.content) if response.content else None
    except ValueError:
        return None
