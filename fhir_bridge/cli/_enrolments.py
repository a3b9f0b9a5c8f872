"""Enrolment commands: which connections a patient's records go to."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from fhir_bridge.config import load_settings
from fhir_bridge.sync import enrol_patient, unenrol_patient

from ._app import opened_store, reports_errors
from ._audit import audited

PatientArg = Annotated[str, typer.Argument(metavar="PATIENT", help="The patient's internal id")]
ConnectionArg = Annotated[
    str, typer.Argument(metavar="CONNECTION", help="A connection from fhir-bridge.toml")
]


@reports_errors
@audited("enrol")
def enrol(
    patient: PatientArg,
    connection: ConnectionArg,
    mrn: Annotated[
        str | None, typer.Option("--mrn", help="The patient's MRN in that EHR, when known")
    ] = None,
) -> None:
    """Enrol a patient with a connection: their records are queued for it."""
    settings = load_settings()
    with opened_store(settings) as store:
        done = enrol_patient(store, settings, patient, connection, mrn=mrn, now=datetime.now(UTC))
    mrn_note = f" (MRN {done.enrolment.mrn})" if done.enrolment.mrn else ""
    typer.echo(f"enrolled {patient} with {connection}{mrn_note}: {done.queued} records queued")
    if settings.connections[connection].enrol == "all":
        typer.echo(f'note: {connection} has enrol = "all": it takes every patient anyway')


@reports_errors
@audited("unenrol")
def unenrol(patient: PatientArg, connection: ConnectionArg) -> None:
    """Unenrol a patient: nothing more of theirs is pushed to the connection. What it was
    sent stays on its server (unenrolling deletes nothing from an EHR); listed here."""
    settings = load_settings()
    with opened_store(settings) as store:
        done = unenrol_patient(store, settings, patient, connection)
    if not done.was_enrolled:
        typer.echo(f"{patient} was not enrolled with {connection}")
    else:
        typer.echo(f"unenrolled {patient} from {connection}: {done.dropped} queued entries dropped")
    if settings.connections[connection].enrol == "all":
        typer.echo(f'note: {connection} has enrol = "all": it still takes every patient')
    if done.remaining:
        typer.echo(f"stays on {connection}'s server ({len(done.remaining)} resources):")
        for link in done.remaining:
            typer.echo(f"  {link.resource_type}/{link.resource_id}")
