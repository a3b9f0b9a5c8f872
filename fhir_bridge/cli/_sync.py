"""Sync commands: push, pull and both; conflicts and their resolution; dead letters."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from fhir_bridge.config import Settings
from fhir_bridge.documents import read_records
from fhir_bridge.errors import InputError, NotSupportedByServer
from fhir_bridge.store import Store
from fhir_bridge.sync import (
    Connection,
    PullSummary,
    PushSummary,
    bulk_pull_connection,
    pull_connection,
    push_connection,
    resolve_conflict,
    server_limits,
)

from ._app import (
    ConnectionOption,
    FhirUrlOption,
    PatientOption,
    connected,
    console,
    opened_store,
    print_json,
    reports_errors,
)
from ._audit import audited


@reports_errors
@audited("push")
def push(
    connection: ConnectionOption = None,
    fhir_url: FhirUrlOption = None,
    patient: PatientOption = None,
    dry_run: Annotated[bool, typer.Option(help="Show the plan; write nothing")] = False,
) -> None:
    """Push queued records to a FHIR server. Exit 1 when any record failed."""
    with connected(connection, fhir_url) as (settings, target, store):
        summary = asyncio.run(_push(store, target, settings, patient, dry_run))
    if dry_run:
        _print_plan(summary)
    _print_counts(f"push to {target.name}", summary.counts())
    if summary.failed or summary.dead_lettered:
        raise typer.Exit(1)


async def _push(
    store: Store, target: Connection, settings: Settings, patient: str | None, dry_run: bool
) -> PushSummary:
    with Progress(transient=True, console=console(stderr=True)) as progress:
        task = progress.add_task("pushing", total=None)
        return await push_connection(
            store,
            target,
            settings,
            patient_id=patient,
            dry_run=dry_run,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )


def _print_plan(summary: PushSummary) -> None:
    table = Table("action", "resource", "identifier", "changes", title="dry run: nothing written")
    for write in summary.planned:
        table.add_row(
            write.action,
            write.resource_type,
            write.identifier.rsplit("|", 1)[-1],
            "\n".join(write.changes) if write.changes else "",
        )
    for row in summary.planned_deletions:
        table.add_row(
            row.action,
            row.resource_type,
            row.identifier.rsplit("|", 1)[-1],
            f"deleted here ({row.record})" + (f": {row.reason}" if row.reason else ""),
        )
    console().print(table)
    for write in summary.planned:
        for warning in write.warnings:
            typer.echo(f"warning: {warning}")


@reports_errors
@audited("pull")
def pull(
    connection: ConnectionOption = None,
    fhir_url: FhirUrlOption = None,
    patient: PatientOption = None,
    bulk: Annotated[
        bool,
        typer.Option(
            "--bulk",
            help="Initial load: the linked patients' resources by Bulk Data $export "
            "(then an ordinary pull); falls back to paged search where the server has none",
        ),
    ] = False,
    max_poll_wait: Annotated[
        float,
        typer.Option(
            "--max-poll-wait",
            min=0.1,
            help="--bulk: longest pause between status polls, Retry-After included (seconds)",
        ),
    ] = 30.0,
) -> None:
    """Bring EHR changes back into the records; conflicts are kept for `fhir-bridge conflicts`."""
    if bulk and patient is not None:
        typer.echo("fhir-bridge: --bulk loads every linked patient: leave out --patient", err=True)
        raise typer.Exit(2)
    with connected(connection, fhir_url) as (settings, target, store):
        if bulk:
            summary = asyncio.run(_pull_bulk(store, target, settings, max_poll_wait))
        else:
            summary = asyncio.run(_pull(store, target, settings, patient))
    _print_counts(f"pull from {target.name}", summary.counts())
    for problem in summary.problems:
        typer.echo(f"fhir-bridge: {problem}", err=True)
    if summary.failed:
        raise typer.Exit(1)


@reports_errors
@audited("sync")
def sync_(
    connection: ConnectionOption = None,
    fhir_url: FhirUrlOption = None,
    patient: PatientOption = None,
) -> None:
    """Push, then pull, for one connection."""
    with connected(connection, fhir_url) as (settings, target, store):
        pushed = asyncio.run(_push(store, target, settings, patient, dry_run=False))
        pulled = asyncio.run(_pull(store, target, settings, patient))
    _print_counts(f"push to {target.name}", pushed.counts())
    _print_counts(f"pull from {target.name}", pulled.counts())
    if pushed.failed or pushed.dead_lettered or pulled.failed:
        raise typer.Exit(1)


async def _pull(
    store: Store, target: Connection, settings: Settings, patient: str | None
) -> PullSummary:
    return await pull_connection(store, target, settings, patient_id=patient)


async def _pull_bulk(
    store: Store, target: Connection, settings: Settings, max_poll_wait: float
) -> PullSummary:
    try:
        summary, exported = await bulk_pull_connection(
            store, target, settings, longest_pause=max_poll_wait
        )
    except NotSupportedByServer:
        typer.echo(
            f"fhir-bridge: {target.name} declares no Patient-level $export: "
            "pulling by paged search instead",
            err=True,
        )
        return await _pull(store, target, settings, None)
    typer.echo(f"bulk export: {exported} resources read", err=True)
    return summary


def _print_counts(title: str, counts: dict[str, int]) -> None:
    table = Table(*counts, title=title)
    table.add_row(*(str(v) for v in counts.values()))
    console(stderr=True).print(table)


@reports_errors
def conflicts() -> None:
    """List open conflicts: fields changed both locally and in the EHR."""
    with opened_store() as store:
        items = store.conflicts.find()
    table = Table("id", "connection", "record", "fields", "local", "ehr")
    for c in items:
        table.add_row(
            str(c.id),
            c.connection,
            f"{c.kind}/{c.record_id}",
            ", ".join(c.fields),
            "; ".join(f"{f}={c.local.get(f)!r}" for f in c.fields),
            "; ".join(f"{f}={c.remote.get(f)!r}" for f in c.fields),
        )
    console().print(table)
    typer.echo(f"{len(items)} open conflicts")


@reports_errors
@audited("resolve")
def resolve(
    conflict_id: Annotated[int, typer.Argument(metavar="ID")],
    take: Annotated[str, typer.Option(help="local, ehr, or merged (with FILE)")],
    file: Annotated[Path | None, typer.Argument(help="The merged record (internal JSON)")] = None,
) -> None:
    """Resolve a conflict with one side, or a merged record; the result is queued for push."""
    if take == "merged" and file is None:
        raise InputError("FILE", "--take merged needs the merged record's file")
    merged = read_records(file)[0] if take == "merged" and file is not None else None
    with opened_store() as store:
        connection, _ = resolve_conflict(store, conflict_id, take, merged, datetime.now(UTC))
    typer.echo(f"resolved {conflict_id} with {take}; queued for {connection}")


@reports_errors
def dead_letters(
    connection: Annotated[str | None, typer.Option(help="Only this connection")] = None,
) -> None:
    """List records that failed permanently, with the server's reason."""
    with opened_store() as store:
        entries = store.outbox.dead_letters(connection)
    table = Table("id", "connection", "record", "attempts", "reason")
    for e in entries:
        table.add_row(
            str(e.id), e.connection, f"{e.kind}/{e.record_id}", str(e.attempts), e.last_error or ""
        )
    console().print(table)
    typer.echo(f"{len(entries)} dead letters")


@reports_errors
@audited("retry")
def retry(
    ids: Annotated[list[int] | None, typer.Argument(metavar="ID", help="Dead-letter ids")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every dead letter")] = False,
) -> None:
    """Queue dead letters for another push."""
    if not ids and not all_:
        raise InputError("retry", "give dead-letter ids or --all")
    with opened_store() as store:
        count = store.outbox.requeue(None if all_ else ids, datetime.now(UTC))
    typer.echo(f"requeued {count}")


@reports_errors
@audited(lambda a: "capabilities.forget" if a.get("forget") else None)
def capabilities(
    connection: Annotated[
        str | None, typer.Argument(help="Only this connection (required with --forget)")
    ] = None,
    forget: Annotated[
        bool,
        typer.Option(
            "--forget",
            help="Forget what the connection's server refused; blocked records are due again",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """What each connection's server does not take (declared read-only, or refused at run
    time), as the store remembers it; ``--forget`` clears a connection's memory."""
    with opened_store() as store:
        if forget:
            if connection is None:
                raise InputError("capabilities", "--forget needs a CONNECTION")
            forgotten = store.refusals.forget(connection)
            waiting = store.outbox.blocked(connection).get(connection, {})
            due = store.outbox.unblock(connection, list(waiting), datetime.now(UTC))
            typer.echo(f"forgot {forgotten} refusals of {connection}; {due} records due again")
            return
        report = server_limits(store, connection)
    if as_json:
        print_json(report)
        return
    for name, limits in sorted(report.items()):
        for item in limits["not_sent"]:
            typer.echo(
                f"{name}: {item['type']} not sent ({item['waiting']} waiting): {item['reason']}"
            )
        for item in limits["refused_modes"] + limits["refused_interactions"]:
            typer.echo(f"{name}: {item['reason']}")
    if not report:
        typer.echo("nothing refused")
