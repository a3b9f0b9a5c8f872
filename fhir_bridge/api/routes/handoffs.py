"""Handoff routes: build, check and (optionally) deliver a transition-of-care package."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel, Field

from fhir_bridge.handoff import finding_json, prepare_handoff, record_handoff, send_handoff

from .._deps import Read, RowId, SettingsDep, StoreDep, TransportDep, Write
from .._handoff_responses import HandoffMade, HandoffOut, HandoffRefusal, Handoffs, HandoffSummary

router = APIRouter(prefix="/v1/handoffs", tags=["handoffs"])


class HandoffBody(BaseModel):
    patient_id: str = Field(min_length=1, max_length=64)
    type: Literal["transfer", "referral", "summary"] = "transfer"
    to: str | None = Field(
        default=None, description="Deliver once to this configured connection (by name)"
    )
    strict: bool = Field(default=False, description="Refuse to deliver when the check finds errors")


@router.post(
    "",
    dependencies=[Write],
    status_code=status.HTTP_201_CREATED,
    responses={
        status.HTTP_422_UNPROCESSABLE_CONTENT: {
            "model": HandoffRefusal,
            "description": "With strict: not sent, the check found errors",
        }
    },
)
async def create_handoff(
    body: HandoffBody,
    store: StoreDep,
    settings: SettingsDep,
    transport: TransportDep,
    response: Response,
) -> HandoffMade:
    """Build the patient's document Bundle, check it, deliver it when ``to`` is given."""
    if body.to is not None and body.to not in settings.connections:
        # only configured receivers: the API never sends patient data to a URL a caller names
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"no connection {body.to!r}")
    now = datetime.now(UTC)
    built = prepare_handoff(store, settings, body.patient_id, body.type, now)
    delivery = (
        None
        if body.to is None
        else await send_handoff(settings, built, body.to, strict=body.strict, transport=transport)
    )
    handoff_id = record_handoff(store, built, body.to, delivery, now)
    response.headers["Location"] = f"/v1/handoffs/{handoff_id}"
    return HandoffMade.model_validate(
        {
            "id": handoff_id,
            "package_id": built.document["identifier"]["value"],
            "findings": [finding_json(f) for f in built.findings],
            "delivery": delivery,
            "document": built.document,
        }
    )


@router.get("", dependencies=[Read])
def list_handoffs(store: StoreDep, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Handoffs:
    """The newest handoffs with their findings and where they went."""
    return Handoffs(items=[HandoffSummary.of(h) for h in store.handoffs.recent(limit)])


@router.get("/{handoff_id}", dependencies=[Read])
def get_handoff(handoff_id: RowId, store: StoreDep) -> HandoffOut:
    """One handoff, with the document Bundle that was built."""
    found = store.handoffs.get(handoff_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no handoff {handoff_id}")
    return HandoffOut.of_stored(found)
