"""Patient matching commands: the held patients, and settling one by hand."""

from __future__ import annotations

import asyncio
import getpass
from typing import Annotated

import typer

from fhir_bridge.errors import InputError
from fhir_bridge.store import PatientMatch
from fhir_bridge.sync import accept_match, retry_match

from ._app import ConnectionOption, connected, opened_store, print_json, reports_errors
from ._audit import audited


def _as_json(match: PatientMatch) -> dict[str, object]:
    return {
        "connection": match.connection,
        "patient_id": match.patient_id,
        "state": match.state,
        "server_id": match.server_id,
        "step": match.step,
        "reason": match.reason,
        "candidates": match.candidates,
        "score": match.score,
        "decided_at": match.decided_at.isoformat(),
        "decided_by": match.decided_by,
    }


def _line(match: PatientMatch) -> str:
    if match.state == "held":
        return f"{match.patient_id} on {match.connection}: held ({match.reason})"
    how = f"by {match.step}" + (f", score {match.score:.2f}" if match.score is not None else "")
    return f"{match.patient_id} on {match.connection}: matched to Patient/{match.server_id} ({how})"


@reports_errors
@audited(lambda a: "match.accept" if a.get("accept") else "match.retry" if a.get("retry") else None)
def match(
    patient: Annotated[str, typer.Argument(help="The internal patient id")],
    connection: ConnectionOption = None,
    accept: Annotated[
        str | None,
        typer.Option("--accept", help="The EHR's Patient id to take as this patient's"),
    ] = None,
    retry: Annotated[
        bool, typer.Option("--retry", help="Forget the decision: the next push matches again")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Show or settle how a patient is matched on a connection's EHR (match mode).

    --accept ID takes the EHR's Patient/ID (checked on the server) and releases the patient's
    held records for the next push; --retry lets the next push match again."""
    if accept and retry:
        raise InputError("--accept/--retry", "give one of them, not both")
    with connected(connection, None) as (_, target, store):
        if accept:
            by = f"match --accept ({getpass.getuser()})"
            found = asyncio.run(accept_match(store, target, patient, accept, by=by))
        elif retry:
            if not retry_match(store, target.name, patient):
                raise InputError("PATIENT", f"no match decision for {patient!r} on {target.name}")
            typer.echo(f"{patient} on {target.name}: will be matched again on the next push")
            return
        else:
            known = store.matches.get(target.name, patient)
            if known is None:
                raise InputError("PATIENT", f"no match decision for {patient!r} on {target.name}")
            found = known
    if as_json:
        print_json(_as_json(found))
    else:
        typer.echo(_line(found))


@reports_errors
def held(
    connection: ConnectionOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Patients held because their EHR's Patient could not be matched, with why."""
    with opened_store() as store:
        found = store.matches.held(connection)
    if as_json:
        print_json([_as_json(m) for m in found])
        return
    for m in found:
        typer.echo(_line(m))
    typer.echo(f"held: {len(found)}")
