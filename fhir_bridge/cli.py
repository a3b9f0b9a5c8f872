"""The ``fhir-bridge`` command line.

Exit codes: 0 success; 2 invalid input or usage (message on stderr names file, record and
field); 1 any other failure. No tracebacks.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
import uvicorn
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from fhir_bridge import model as m
from fhir_bridge.api import SECRET_HEADER, create_app, secret_of
from fhir_bridge.config import CONFIG_ENV, Settings, load_settings
from fhir_bridge.demo import DASHBOARD
from fhir_bridge.demo import run as run_demo
from fhir_bridge.documents import parse_json, read_fhir, read_records
from fhir_bridge.errors import BridgeError, InputError, MappingError
from fhir_bridge.handoff import (
    deliver_handoff,
    match_patient,
    prepare_handoff,
    read_package,
    record_handoff,
    rekey,
    render_html,
)
from fhir_bridge.mappers import MappingContext, from_fhir, to_bundle
from fhir_bridge.sandbox import SandboxError
from fhir_bridge.sandbox.cli import app as sandbox_app
from fhir_bridge.store import Store
from fhir_bridge.sync import (
    Connection,
    PullSummary,
    PushSummary,
    Worker,
    fleet_status,
    pull_connection,
    push_connection,
    resolve_conflict,
    resolve_connection,
    subscribe,
    unsubscribe,
)

app = typer.Typer(
    name="fhir-bridge",
    help="Sync care plans, goals and referrals between care management and FHIR R4 EHRs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

app.add_typer(sandbox_app, name="sandbox")

P = ParamSpec("P")
R = TypeVar("R")

Files = Annotated[list[Path], typer.Argument(help="Input files", show_default=False)]
ConnectionOption = Annotated[
    str | None, typer.Option("--connection", help="A connection from fhir-bridge.toml")
]
FhirUrlOption = Annotated[
    str | None, typer.Option("--fhir-url", help="An ad-hoc FHIR base URL, no auth")
]
PatientOption = Annotated[str | None, typer.Option("--patient", help="Only this patient's records")]
Namespace = Annotated[
    str | None,
    typer.Option(
        help="Identifier namespace (default: the configured one, from fhir-bridge.toml,"
        " $FHIR_BRIDGE_NAMESPACE or built-in)"
    ),
]


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"fhir-bridge: {message}", err=True)
    return typer.Exit(code)


def reports_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn fhir-bridge's errors into messages and exit codes (2 for bad input, 1 otherwise)."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except MappingError as exc:
            lines = "\n".join(f"  {p}" for p in exc.problems)
            raise _fail(f"invalid input ({len(exc.problems)} problems):\n{lines}", 2) from None
        except InputError as exc:
            raise _fail(str(exc), 2) from None
        except BridgeError as exc:
            raise _fail(str(exc), 1) from None

    return wrapper


def _context(namespace: str | None) -> MappingContext:
    """The option's namespace, else the configured one (fhir-bridge.toml or the environment)."""
    return MappingContext(namespace or load_settings().namespace, datetime.now(UTC))


def _console(*, stderr: bool = False) -> Console:
    """A console; piped output gets wide tables instead of 80 columns of wrapped cells."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 200)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False))
    sys.stdout.write("\n")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the internal record format."""
    _print_json(m.json_schema())


@app.command("map")
@reports_errors
def map_(files: Files, namespace: Namespace = None) -> None:
    """Translate internal JSON (a record, a list, or a patient package) into one FHIR Bundle."""
    records = [r for path in files for r in read_records(path)]
    _print_json(to_bundle(records, _context(namespace)))


@app.command("import")
@reports_errors
def import_(files: Files, namespace: Namespace = None) -> None:
    """Translate FHIR JSON (a resource, a Bundle or NDJSON) into internal records."""
    items = [item for path in files for item in read_fhir(path)]
    result = from_fhir(
        [(i.resource, i.full_url) for i in items],
        _context(namespace),
        where=[i.where for i in items],
    )
    if result.skipped:
        kinds = ", ".join(f"{t} {n}" for t, n in sorted(result.skipped.items()))
        typer.echo(f"fhir-bridge: not held by the internal model, skipped: {kinds}", err=True)
    _print_json([r.model_dump(mode="json", exclude_none=True) for r in result.records])


@contextmanager
def _opened_store(settings: Settings | None = None) -> Iterator[Store]:
    store = Store((settings or load_settings()).database_url)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _connected(
    connection: str | None, fhir_url: str | None
) -> Iterator[tuple[Settings, Connection, Store]]:
    """The settings, the FHIR server named on the command line, and the store."""
    settings = load_settings()
    target = resolve_connection(settings, connection, fhir_url)
    with _opened_store(settings) as store:
        yield settings, target, store


@app.command()
@reports_errors
def load(files: Files) -> None:
    """Put internal records (or `fhir-bridge import` output) into the store and queue them."""
    settings = load_settings()
    records = [r for path in files for r in read_records(path)]
    with _opened_store(settings) as store:
        results = store.put_records(records, list(settings.connections), datetime.now(UTC))
    changed = sum(r.changed for r in results)
    typer.echo(
        f"loaded {len(results)} records: {changed} new or changed, "
        f"{len(results) - changed} unchanged"
    )


@app.command()
@reports_errors
def get(
    kind: Annotated[
        str, typer.Argument(help="patient, careplan, goal, referral, problem, medication, careteam")
    ],
    record_id: Annotated[str, typer.Argument(metavar="ID", help="The internal id")],
) -> None:
    """Print one stored record as internal JSON."""
    if kind not in m.RECORD_TYPES:
        raise InputError("KIND", f"unknown kind {kind!r}; one of {', '.join(m.RECORD_TYPES)}")
    with _opened_store() as store:
        record = store.records.get(kind, record_id)
        deleted = record is None and store.records.is_deleted(kind, record_id)
    if deleted:
        raise _fail(f"{kind} {record_id!r} was deleted in the EHR", 1)
    if record is None:
        raise _fail(f"no {kind} {record_id!r} in the store", 1)
    _print_json(record.model_dump(mode="json", exclude_none=True))


@app.command()
@reports_errors
def push(
    connection: ConnectionOption = None,
    fhir_url: FhirUrlOption = None,
    patient: PatientOption = None,
    dry_run: Annotated[bool, typer.Option(help="Show the plan; write nothing")] = False,
) -> None:
    """Push queued records to a FHIR server. Exit 1 when any record failed."""
    with _connected(connection, fhir_url) as (settings, target, store):
        summary = asyncio.run(_push(store, target, settings, patient, dry_run))
    if dry_run:
        _print_plan(summary)
    _print_counts(f"push to {target.name}", summary.counts())
    if summary.failed or summary.dead_lettered:
        raise typer.Exit(1)


async def _push(
    store: Store, target: Connection, settings: Settings, patient: str | None, dry_run: bool
) -> PushSummary:
    with Progress(transient=True, console=_console(stderr=True)) as progress:
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
    _console().print(table)


@app.command()
@reports_errors
def pull(
    connection: ConnectionOption = None,
    fhir_url: FhirUrlOption = None,
    patient: PatientOption = None,
) -> None:
    """Bring EHR changes back into the records; conflicts are kept for `fhir-bridge conflicts`."""
    with _connected(connection, fhir_url) as (settings, target, store):
        summary = asyncio.run(_pull(store, target, settings, patient))
    _print_counts(f"pull from {target.name}", summary.counts())
    for problem in summary.problems:
        typer.echo(f"fhir-bridge: {problem}", err=True)
    if summary.failed:
        raise typer.Exit(1)


@app.command("sync")
@reports_errors
def sync_(
    connection: ConnectionOption = None,
    fhir_url: FhirUrlOption = None,
    patient: PatientOption = None,
) -> None:
    """Push, then pull, for one connection."""
    with _connected(connection, fhir_url) as (settings, target, store):
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


def _print_counts(title: str, counts: dict[str, int]) -> None:
    table = Table(*counts, title=title)
    table.add_row(*(str(v) for v in counts.values()))
    _console(stderr=True).print(table)


@app.command()
@reports_errors
def conflicts() -> None:
    """List open conflicts: fields changed both locally and in the EHR."""
    with _opened_store() as store:
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
    _console().print(table)
    typer.echo(f"{len(items)} open conflicts")


@app.command()
@reports_errors
def resolve(
    conflict_id: Annotated[int, typer.Argument(metavar="ID")],
    take: Annotated[str, typer.Option(help="local, ehr, or merged (with FILE)")],
    file: Annotated[Path | None, typer.Argument(help="The merged record (internal JSON)")] = None,
) -> None:
    """Resolve a conflict with one side, or a merged record; the result is queued for push."""
    if take == "merged" and file is None:
        raise InputError("FILE", "--take merged needs the merged record's file")
    merged = read_records(file)[0] if take == "merged" and file is not None else None
    with _opened_store() as store:
        connection, _ = resolve_conflict(store, conflict_id, take, merged, datetime.now(UTC))
    typer.echo(f"resolved {conflict_id} with {take}; queued for {connection}")


CallbackOption = Annotated[
    str, typer.Option("--callback", help="Base URL where `fhir-bridge serve` is reachable")
]


def _webhook_secret(settings: Settings, connection: str) -> str:
    secret = secret_of(settings, connection)
    if secret is None:
        raise InputError(
            f"connections.{connection}.webhook_secret_env",
            "name an environment variable holding the notification secret, and set it",
        )
    return secret


@app.command("subscribe")
@reports_errors
def subscribe_(connection: ConnectionOption = None, callback: CallbackOption = "") -> None:
    """Create (once) REST-hook Subscriptions for CarePlan, Goal, ServiceRequest and Task."""
    settings = load_settings()
    target = resolve_connection(settings, connection, None)
    secret = _webhook_secret(settings, target.name)
    if not callback.startswith(("http://", "https://")):
        raise InputError("--callback", "an http(s) URL where fhir-bridge serve listens")

    async def run() -> tuple[int, int]:
        async with target.client() as client:
            return await subscribe(client, target.name, callback, secret, SECRET_HEADER)

    created, kept = asyncio.run(run())
    typer.echo(f"subscriptions: {created} created, {kept} already there")


@app.command("unsubscribe")
@reports_errors
def unsubscribe_(connection: ConnectionOption = None, callback: CallbackOption = "") -> None:
    """Delete the Subscriptions `subscribe` created for this callback."""
    settings = load_settings()
    target = resolve_connection(settings, connection, None)

    async def run() -> int:
        async with target.client() as client:
            return await unsubscribe(client, target.name, callback)

    typer.echo(f"subscriptions deleted: {asyncio.run(run())}")


@app.command()
@reports_errors
def apikey(
    action: Annotated[str, typer.Argument(help="create")],
    name: Annotated[str, typer.Option(help="Who or what uses the key")] = "default",
    scope: Annotated[
        list[str] | None, typer.Option(help="read, write or admin (repeatable)")
    ] = None,
) -> None:
    """Create an API key for the HTTP service (printed once; only its hash is stored)."""
    scopes = scope or ["read"]
    if action != "create":
        raise InputError("ACTION", f"{action!r}: only 'create' is supported")
    unknown = [s for s in scopes if s not in ("read", "write", "admin")]
    if unknown:
        raise InputError("--scope", f"unknown scope {unknown[0]!r}; use read, write or admin")
    with _opened_store() as store:
        typer.echo(store.api_keys.create(name, scopes, datetime.now(UTC)))


@app.command()
@reports_errors
def worker(
    push_every: Annotated[float, typer.Option(help="Seconds between outbox checks")] = 2.0,
    pull_every: Annotated[
        float, typer.Option(help="Seconds between pulls per connection (0: never pull)")
    ] = 60.0,
    lease_seconds: Annotated[
        float, typer.Option(help="How long a claim on work lasts unless renewed", min=1.0)
    ] = 30.0,
    claim_batch: Annotated[
        int, typer.Option(help="Patients claimed (and pushed concurrently) at a time", min=1)
    ] = 4,
) -> None:
    """Drain the outbox continuously and pull on a schedule; SIGTERM stops it gracefully.

    Start it several times (on PostgreSQL, on several hosts) to share the work."""
    settings = load_settings()
    if not settings.connections:
        raise InputError("fhir-bridge.toml", "configure at least one [connections.NAME]")
    Store(settings.database_url).close()  # schema up to date before the loop
    loop_worker = Worker(
        settings,
        push_every=push_every,
        pull_every=pull_every,
        lease_seconds=lease_seconds,
        claim_batch=claim_batch,
    )

    async def main_loop() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, loop_worker.stop.set)
        await loop_worker.run()

    asyncio.run(main_loop())
    typer.echo("worker stopped", err=True)


@app.command()
@reports_errors
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Workers alive, the work each has claimed, and the outbox per connection."""
    with _opened_store() as store:
        report = fleet_status(store, datetime.now(UTC))
    if as_json:
        _print_json(report)
        return
    typer.echo(f"workers alive: {len(report['alive'])}")
    for w in report["alive"]:
        claims = ", ".join(f"{c['connection']} {c['scope']} {c['key']}" for c in w["claims"])
        typer.echo(f"  {w['id']}  heartbeat {w['heartbeat_age_s']} s ago  claims: {claims or '-'}")
    for name, counts in sorted(report["queue"].items()):
        parts = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        throttle = report["throttled"].get(name)
        typer.echo(
            f"queue {name}: {parts}" + (f" (throttled until {throttle})" if throttle else "")
        )
    if report["orphaned_claims"]:
        typer.echo(f"claims of workers not alive: {report['orphaned_claims']}")


@app.command()
@reports_errors
def maintenance(
    dead_after: Annotated[
        float, typer.Option(help="Seconds without a heartbeat after which a worker is dead")
    ] = 90.0,
) -> None:
    """Free stuck claims: expired leases and those of workers that stopped answering."""
    with _opened_store() as store:
        freed = store.workers.free_stuck_claims(datetime.now(UTC), timedelta(seconds=dead_after))
    typer.echo(f"freed {freed} claims")


@app.command()
@reports_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    with_worker: Annotated[
        bool, typer.Option("--worker", help="Also drain the outbox and pull, in this process")
    ] = False,
    push_every: Annotated[
        float, typer.Option(help="With --worker: seconds between outbox checks")
    ] = 2.0,
    pull_every: Annotated[float, typer.Option(help="With --worker: seconds between pulls")] = 60.0,
) -> None:
    """Run the HTTP service: records, sync, handoffs, change feed, dashboard, metrics."""
    settings = load_settings()
    loop_worker = (
        Worker(settings, push_every=push_every, pull_every=pull_every) if with_worker else None
    )
    _serve(settings, host, port, loop_worker)


def _serve(settings: Settings, host: str, port: int, loop_worker: Worker | None) -> None:
    # uvicorn stops gracefully on SIGTERM/SIGINT, then raises the signal again for the handler
    # it found: let that be a no-op, so a requested stop ends with exit status 0
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
    uvicorn.run(create_app(settings, worker=loop_worker), host=host, port=port, log_level="info")
    typer.echo("service stopped", err=True)


@app.command()
@reports_errors
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
    with _opened_store(settings) as store:
        built = prepare_handoff(store, settings, patient_id, handoff_type, now)
        table = Table("severity", "finding", "about", "message", title="completeness check")
        for f in built.findings:
            table.add_row(f.severity, f.code, f.record or "", f.message)
        _console(stderr=True).print(table)
        if out is not None:
            out.write_text(json.dumps(built.document, indent=2))
        elif to is None:
            _print_json(built.document)
        if html is not None:
            html.write_text(render_html(built.package, built.handoff_type, built.findings))
        delivery = None
        if to is not None:
            if strict and built.errors:
                raise _fail(
                    f"not sent: {len(built.errors)} errors in the completeness check (--strict)",
                    1,
                )
            delivery = asyncio.run(deliver_handoff(settings, to, built.document))
            typer.echo(delivery, err=True)
        record_handoff(store, built, to, delivery, now)


@app.command()
@reports_errors
def handoffs() -> None:
    """List the handoff packages built, their findings and where they went."""
    with _opened_store() as store:
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
    _console().print(table)


@app.command()
@reports_errors
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
        bundle = parse_json(file.read_text(encoding="utf-8"), source)
    elif from_ is not None and bundle_id is not None:
        bundle = asyncio.run(_fetch_bundle(settings, from_, bundle_id))
        source = f"{from_} Bundle/{bundle_id}"
    else:
        raise InputError("receive", "give FILE, or --from CONNECTION --id ID")
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InputError(source, "expected a document or transaction Bundle")
    ctx = settings.mapping_context(datetime.now(UTC))
    try:
        incoming, records, _ = read_package(bundle, ctx)
    except ValueError as exc:
        raise InputError(source, str(exc)) from None
    with _opened_store(settings) as store:
        known = [
            p
            for pid in store.records.patient_ids()
            if isinstance(p := store.records.get("patient", pid), m.Patient)
        ]
        match, how = match_patient(incoming, known)
        if match is not None and how != "identifier" and not confirm_match:
            raise InputError(
                source,
                f"the patient may be {match.id!r} ({how}); run again with --confirm-match "
                "to file it there, or add an identifier both sides share",
            )
        patient = incoming if match is None else match
        stored = [patient] if match is None else []
        store.put_records(
            [*stored, *rekey(records, patient.id)], list(settings.connections), datetime.now(UTC)
        )
    typer.echo(f"received {len(records)} records for patient {patient.id} ({how})")


async def _fetch_bundle(settings: Settings, name: str, bundle_id: str) -> Any:
    target = resolve_connection(settings, name, None)
    async with target.client() as client:
        return await client.read("Bundle", bundle_id)


@app.command("dead-letters")
@reports_errors
def dead_letters(
    connection: Annotated[str | None, typer.Option(help="Only this connection")] = None,
) -> None:
    """List records that failed permanently, with the server's reason."""
    with _opened_store() as store:
        entries = store.outbox.dead_letters(connection)
    table = Table("id", "connection", "record", "attempts", "reason")
    for e in entries:
        table.add_row(
            str(e.id), e.connection, f"{e.kind}/{e.record_id}", str(e.attempts), e.last_error or ""
        )
    _console().print(table)
    typer.echo(f"{len(entries)} dead letters")


@app.command()
@reports_errors
def retry(
    ids: Annotated[list[int] | None, typer.Argument(metavar="ID", help="Dead-letter ids")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every dead letter")] = False,
) -> None:
    """Queue dead letters for another push."""
    if not ids and not all_:
        raise InputError("retry", "give dead-letter ids or --all")
    with _opened_store() as store:
        count = store.outbox.requeue(None if all_ else ids, datetime.now(UTC))
    typer.echo(f"requeued {count}")


@app.command()
@reports_errors
def demo(
    out: Annotated[Path, typer.Option(help="Where to write the demo's files")] = Path(
        "demo-output"
    ),
    port: Annotated[int, typer.Option(help="Port of the local HAPI sandbox")] = 8080,
    keep_running: Annotated[bool, typer.Option(help="Leave the sandbox running")] = False,
) -> None:
    """Load, push, edit in the EHR, pull (a merge and a conflict), hand off: the whole round.

    With --keep-running the sandbox stays up and the service (API and dashboard, with its
    worker) runs on the demo's data until Ctrl-C."""
    try:
        failures = run_demo(out, port=port, keep_running=keep_running)
    except SandboxError as exc:
        raise _fail(f"{exc.message}\n{exc.log_tail}", 1) from None
    if failures:
        raise _fail(f"{failures} demo steps failed", 1)
    if keep_running:
        os.environ[CONFIG_ENV] = str(out / "fhir-bridge.toml")
        settings = load_settings()
        with _opened_store(settings) as store:
            key = store.api_keys.create("demo", ["admin"], datetime.now(UTC))
        typer.echo(f"dashboard: {DASHBOARD} (API key: {key}); Ctrl-C stops", err=True)
        _serve(settings, "127.0.0.1", 8000, Worker(settings))


def main() -> None:
    try:
        app()
    except Exception as exc:
        typer.echo(f"fhir-bridge: error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
