"""Handoff commands: build (and send) a transition-of-care package, list them, receive one."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fhir_bridge.config import load_settings
from fhir_bridge.documents import parse_json, read_text
from fhir_bridge.errors import InputError
from fhir_bridge.handoff import (
    fetch_bundle,
    prepare_handoff,
    read_arrival,
    receive_handoff,
    record_handoff,
    render_html,
    send_handoff,
)

from ._app import console, opened_store, print_json, reports_errors
from ._audit import audited


@reports_errors
@audited("handoff")
def handoff(
    patient_id: Annotated[str, typer.Argument(metavar="PATIENT_ID")],
    handoff_type: Annotated[
        str, typer.Option("--type", help="transfer, referral or summary")
    ] = "transfer",
    out: Annotated[Path | None, typer.Option(help="Write the document Bundle here")] = None,
    html: Annotated[Path | None, typer.Option(help="Also write a printable HTML summary")] = None,
    to: Annotated[str | None, typer.Option(help="Deliver to a connection or FHIR URL")] = None,
    strict: Annotated[
        bool, typer.Option(help="Refuse to send when the check finds errors")
    ] = False,
) -> None:
    """Build a checked transition-of-care package (FHIR document Bundle) for one patient."""
    settings = load_settings()
    now = datetime.now(UTC)
    with opened_store(settings) as store:
        built = prepare_handoff(store, settings, patient_id, handoff_type, now)
        table = Table("severity", "finding", "about", "message", title="completeness check")
        for f in built.findings:
            table.add_row(f.severity, f.code, f.record or "", f.message)
        console(stderr=True).print(table)
        if out is not None:
            out.write_text(json.dumps(built.document, indent=2))
        elif to is None:
            print_json(built.document)
        if html is not None:
            html.write_text(render_html(built.package, built.handoff_type, built.findings))
        delivery = None
        if to is not None:
            delivery = asyncio.run(send_handoff(settings, built, to, strict=strict))
            typer.echo(delivery, err=True)
        record_handoff(store, built, to, delivery, now)


@reports_errors
def handoffs() -> None:
    """List the handoff packages built, their findings and where they went."""
    with opened_store() as store:
        items = store.handoffs.recent()
    table = Table("id", "when", "patient", "type", "errors", "warnings", "destination", "delivery")
    for h in items:
        severities = [f["severity"] for f in h.findings]
        table.add_row(
            str(h.id),
            h.created_at.isoformat()[:19],
            h.patient_id,
            h.handoff_type,
            str(severities.count("error")),
            str(severities.count("warning")),
            h.destination or "",
            h.delivery or "",
        )
    console().print(table)


@reports_errors
@audited("receive")
def receive(
    file: Annotated[Path | None, typer.Argument(help="A document or transaction Bundle")] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="Fetch it from this connection (with --id)")
    ] = None,
    bundle_id: Annotated[str | None, typer.Option("--id", help="The Bundle's id there")] = None,
    confirm_match: Annotated[
        bool, typer.Option(help="Accept a patient matched on name and birth date only")
    ] = False,
) -> None:
    """Import an arriving handoff into the store, matching the patient by identifier first."""
    settings = load_settings()
    if file is not None:
        source = str(file)
        bundle = parse_json(read_text(file), source)
    elif from_ is not None and bundle_id is not None:
        bundle = asyncio.run(fetch_bundle(settings, from_, bundle_id))
        source = f"{from_} Bundle/{bundle_id}"
    else:
        raise InputError("receive", "give FILE, or --from CONNECTION --id ID")
    now = datetime.now(UTC)
    arrival = read_arrival(bundle, source, settings, now)
    with opened_store(settings) as store:
        received = receive_handoff(store, settings, arrival, confirm_match=confirm_match, now=now)
    typer.echo(
        f"received {received.records} records for patient {received.patient_id} ({received.how})"
    )
