"""Enrolling patients with connections, as the CLI, the API and ``load`` do it.

Routing (which records go where) is ``store.Routing``; here: the checks every caller shares
(the connection is configured, the patient is stored) before the store writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from fhir_bridge.config import Settings
from fhir_bridge.documents import Enrolled as LoadedEnrolment
from fhir_bridge.errors import InputError, UnknownPatient
from fhir_bridge.store import Enrolled, NewEnrolment, Store, Unenrolled


def check_connection(settings: Settings, name: str, where: str) -> None:
    """InputError naming ``where`` when ``name`` is not a configured connection."""
    if name not in settings.connections:
        known = ", ".join(settings.connections) or "none configured"
        raise InputError(where, f"no connection {name!r} in fhir-bridge.toml (known: {known})")


def loaded_enrolments(
    settings: Settings, enrolments: Sequence[LoadedEnrolment]
) -> list[NewEnrolment]:
    """The enrolments of loaded packages, each connection checked (the error names the file,
    the package's enrolment and the field)."""
    for e in enrolments:
        check_connection(settings, e.enrolment.connection, f"{e.where}.connection")
    return [NewEnrolment(e.patient_id, e.enrolment.connection, e.enrolment.mrn) for e in enrolments]


def enrol_patient(
    store: Store,
    settings: Settings,
    patient_id: str,
    connection: str,
    *,
    mrn: str | None,
    now: datetime,
    where: str = "CONNECTION",
) -> Enrolled:
    """Enrol a stored patient with a configured connection; their records are queued there."""
    check_connection(settings, connection, where)
    if store.records.get("patient", patient_id) is None:
        raise UnknownPatient(patient_id)
    return store.enrolments.enrol(patient_id, connection, mrn, now)


def unenrol_patient(
    store: Store, settings: Settings, patient_id: str, connection: str, *, where: str = "CONNECTION"
) -> Unenrolled:
    """Unenrol: nothing more of the patient is pushed there; what stays on the server is
    answered (fhir-bridge never deletes from an EHR)."""
    check_connection(settings, connection, where)
    return store.enrolments.unenrol(patient_id, connection)
