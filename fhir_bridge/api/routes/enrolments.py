"""A patient's enrolments: which connections their records go to (``enrol = "listed"``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Response, status

from fhir_bridge.config import Settings
from fhir_bridge.errors import UnknownPatient
from fhir_bridge.store import Store
from fhir_bridge.sync import enrol_patient, unenrol_patient

from .._deps import Read, SettingsDep, StoreDep, Write
from .._responses import (
    EnrolmentIn,
    EnrolmentMade,
    EnrolmentOut,
    Enrolments,
    ServerResource,
    Unenrolment,
)

router = APIRouter(prefix="/v1/patients/{patient_id}/enrolments", tags=["enrolments"])


def _known(store: Store, settings: Settings, patient_id: str, connection: str | None) -> None:
    if store.records.get("patient", patient_id) is None:
        raise UnknownPatient(patient_id)
    if connection is not None and connection not in settings.connections:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no connection {connection!r}")


@router.get("", dependencies=[Read])
def list_enrolments(patient_id: str, store: StoreDep, settings: SettingsDep) -> Enrolments:
    """The connections the patient is enrolled with."""
    _known(store, settings, patient_id, None)
    return Enrolments(items=[EnrolmentOut.of(e) for e in store.enrolments.of_patient(patient_id)])


@router.get("/{connection}", dependencies=[Read])
def get_enrolment(
    patient_id: str, connection: str, store: StoreDep, settings: SettingsDep
) -> EnrolmentOut:
    _known(store, settings, patient_id, connection)
    found = store.enrolments.get(patient_id, connection)
    if found is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"{patient_id!r} is not enrolled with {connection!r}"
        )
    return EnrolmentOut.of(found)


@router.put("/{connection}", dependencies=[Write])
def put_enrolment(
    patient_id: str,
    connection: str,
    store: StoreDep,
    settings: SettingsDep,
    response: Response,
    body: Annotated[EnrolmentIn | None, Body()] = None,
) -> EnrolmentMade:
    """Enrol the patient (201; 200 when already enrolled): their records are queued there."""
    _known(store, settings, patient_id, connection)
    existed = store.enrolments.get(patient_id, connection) is not None
    mrn = body.mrn if body is not None else None
    done = enrol_patient(store, settings, patient_id, connection, mrn=mrn, now=datetime.now(UTC))
    response.status_code = status.HTTP_200_OK if existed else status.HTTP_201_CREATED
    return EnrolmentMade(enrolment=EnrolmentOut.of(done.enrolment), queued=done.queued)


@router.delete("/{connection}", dependencies=[Write])
def delete_enrolment(
    patient_id: str, connection: str, store: StoreDep, settings: SettingsDep
) -> Unenrolment:
    """Unenrol: nothing more of the patient is pushed there; answers what stays on the
    connection's server (fhir-bridge never deletes from an EHR)."""
    _known(store, settings, patient_id, connection)
    done = unenrol_patient(store, settings, patient_id, connection)
    return Unenrolment(
        was_enrolled=done.was_enrolled,
        dropped=done.dropped,
        remaining=[
            ServerResource(resource_type=x.resource_type, id=x.resource_id) for x in done.remaining
        ],
    )
