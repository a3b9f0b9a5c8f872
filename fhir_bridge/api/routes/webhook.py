"""REST-hook notifications from an EHR's FHIR server (R4 Subscriptions).

HAPI and other R4 servers notify ``<endpoint>/<Type>/<id>`` with the resource (``PUT``) when
the Subscription asks for a payload, or post an empty body to ``<endpoint>`` when it does
not. Either way the route answers at once (202) and the work runs after the response: with a
payload, that resource is applied (a targeted pull); without, the connection is pulled
incrementally. Every notification must carry the connection's secret in
``X-Fhir-Bridge-Secret``.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Header, HTTPException, Request, status
from fastapi.responses import JSONResponse

from fhir_bridge.config import WEBHOOK_SECRET_HEADER, Settings
from fhir_bridge.sync import PULLED_TYPES

from .._responses import OperationOutcome

log = logging.getLogger("fhir_bridge.api")
Json = dict[str, Any]
# (connection, resources or None for an incremental pull) -> work done after the answer
Handler = Callable[[str, list[Json] | None], Awaitable[None]]


class FhirJSONResponse(JSONResponse):
    """Notifying servers (HAPI) parse the answer as a FHIR resource: FHIR's media type."""

    media_type = "application/fhir+json"


def webhook_router(settings: Settings, handle: Handler) -> APIRouter:
    router = APIRouter(prefix="/fhir/notify", tags=["notifications"])

    def check(connection: str, secret: str | None) -> None:
        """401, the same for an unknown connection as for a wrong secret: nothing tells an
        outsider which connections exist."""
        expected = settings.webhook_secret(connection)
        # compared even when there is nothing to compare with, so both take the same time
        matches = hmac.compare_digest((expected or "\0").encode(), (secret or "").encode())
        if expected is None or secret is None or not matches:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "missing or wrong notification secret"
            )

    @router.post(
        "/{connection}", status_code=status.HTTP_202_ACCEPTED, response_class=FhirJSONResponse
    )
    async def notified(
        connection: str,
        background: BackgroundTasks,
        secret: Annotated[str | None, Header(alias=WEBHOOK_SECRET_HEADER)] = None,
    ) -> OperationOutcome:
        """A notification without payload: pull the connection incrementally."""
        check(connection, secret)
        background.add_task(handle, connection, None)
        log.info("notification", extra={"action": "notify", "connection": connection})
        return _accepted("accepted: the connection will be pulled")

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
        background: BackgroundTasks,
        secret: Annotated[str | None, Header(alias=WEBHOOK_SECRET_HEADER)] = None,
    ) -> OperationOutcome:
        """A notification carrying the changed resource (``resource_id`` on the server):
        apply it."""
        check(connection, secret)
        if resource_type not in PULLED_TYPES:
            return _accepted(f"ignored: {resource_type} is not synced")
        try:
            resource = await request.json()
        except ValueError:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "the body is not JSON") from None
        if not isinstance(resource, dict) or resource.get("resourceType") != resource_type:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"expected a {resource_type} resource")
        background.add_task(handle, connection, [resource])
        log.info(
            "notification",
            extra={"action": "notify", "connection": connection, "resource_type": resource_type},
        )
        return _accepted("accepted: the resource will be applied")

    return router


def _accepted(text: str) -> OperationOutcome:
    """An OperationOutcome: notifying servers (HAPI) parse the answer as a FHIR resource."""
    return OperationOutcome(
        resourceType="OperationOutcome",
        issue=[{"severity": "information", "code": "informational", "diagnostics": text}],
    )
