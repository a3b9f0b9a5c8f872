"""REST-hook notifications from an EHR's FHIR server (R4 Subscriptions): hints, never data.

The Subscriptions ``fhir-bridge subscribe`` makes notify ``<endpoint>/<Type>`` with a bare
POST (no payload), one per pulled type, each with a secret of its own in
``X-Fhir-Bridge-Secret``. Older Subscriptions notify ``<endpoint>`` (POST, no type) or
``<endpoint>/<Type>/<id>`` (PUT with the resource). Whatever the body, nothing of it is
applied: the route checks the secret (before reading any body), a PUT's body only for naming
the resource of its path, and hands the connection and type to the coalescing notifier
(``sync.Notifications``), which pulls that type from the EHR itself. The answer (202) comes
at once; an unknown connection and a wrong secret get the same 401.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, status
from fastapi.responses import JSONResponse

from fhir_bridge.config import WEBHOOK_SECRET_HEADER, Settings
from fhir_bridge.store import Store
from fhir_bridge.sync import PULLED_TYPES

from .._responses import OperationOutcome

log = logging.getLogger("fhir_bridge.api")
# (connection, resource type or None: every type) -> True when it starts a pull
Hint = Callable[[str, str | None], bool]
# a notification's body is only looked at for its resourceType and id
MAX_NOTIFICATION_BYTES = 1_000_000


class FhirJSONResponse(JSONResponse):
    """Notifying servers (HAPI) parse the answer as a FHIR resource: FHIR's media type."""

    media_type = "application/fhir+json"


def webhook_router(
    settings: Settings,
    store: Store,
    hint: Hint,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> APIRouter:
    router = APIRouter(prefix="/fhir/notify", tags=["notifications"])

    def check(connection: str, resource_type: str | None, secret: str | None) -> None:
        """A valid secret of this connection's Subscription of that type, else 401 (the same
        for a connection that does not exist)."""
        known = connection in settings.connections
        if (
            secret is None
            or not known
            or not store.subscription_secrets.verify(connection, resource_type, secret, clock())
        ):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "missing or wrong notification secret"
            )

    def noted(connection: str, resource_type: str | None) -> OperationOutcome:
        started = hint(connection, resource_type)
        log.info(
            "notification",
            extra={
                "action": "notify",
                "connection": connection,
                "resource_type": resource_type,
                "coalesced": not started,
            },
        )
        what = resource_type or "every type"
        return _accepted(f"accepted: {what} will be read from the server")

    @router.post(
        "/{connection}", status_code=status.HTTP_202_ACCEPTED, response_class=FhirJSONResponse
    )
    async def notified(
        connection: str,
        secret: Annotated[str | None, Header(alias=WEBHOOK_SECRET_HEADER)] = None,
    ) -> OperationOutcome:
        """A notification that names no type (a Subscription of the older single endpoint):
        every pulled type is read from the server."""
        check(connection, None, secret)
        return noted(connection, None)

    @router.post(
        "/{connection}/{resource_type}",
        status_code=status.HTTP_202_ACCEPTED,
        response_class=FhirJSONResponse,
    )
    async def notified_type(
        connection: str,
        resource_type: str,
        secret: Annotated[str | None, Header(alias=WEBHOOK_SECRET_HEADER)] = None,
    ) -> OperationOutcome:
        """``resource_type`` changed on the server: it is pulled (coalesced with others)."""
        check(connection, resource_type, secret)
        if resource_type not in PULLED_TYPES:
            return _accepted(f"ignored: {resource_type} is not synced")
        return noted(connection, resource_type)

    @router.put(
        "/{connection}/{resource_type}/{resource_id}",
        status_code=status.HTTP_202_ACCEPTED,
        response_class=FhirJSONResponse,
    )
    async def notified_with_payload(
        connection: str,
        resource_type: str,
        resource_id: str,
        request: Request,
        secret: Annotated[str | None, Header(alias=WEBHOOK_SECRET_HEADER)] = None,
    ) -> OperationOutcome:
        """A notification carrying a resource (an older Subscription): the body must be the
        resource its path names, and is otherwise ignored: the type is read from the server."""
        check(connection, resource_type, secret)
        body = await _body(request)
        try:
            resource = json.loads(body)
        except (ValueError, RecursionError):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "the body is not JSON") from None
        if not isinstance(resource, dict) or resource.get("resourceType") != resource_type:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"expected a {resource_type} resource")
        if resource.get("id") != resource_id:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST, "the body's id is not the id in the path"
            )
        if resource_type not in PULLED_TYPES:
            return _accepted(f"ignored: {resource_type} is not synced")
        return noted(connection, resource_type)

    return router


async def _body(request: Request) -> bytes:
    """The body, refused (413) past ``MAX_NOTIFICATION_BYTES`` without reading further."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_NOTIFICATION_BYTES:
        raise HTTPException(413, "notification too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_NOTIFICATION_BYTES:
            raise HTTPException(413, "notification too large")
    return bytes(body)


def _accepted(text: str) -> OperationOutcome:
    """An OperationOutcome: notifying servers (HAPI) parse the answer as a FHIR resource."""
    return OperationOutcome(
        resourceType="OperationOutcome",
        issue=[{"severity": "information", "code": "informational", "diagnostics": text}],
    )
