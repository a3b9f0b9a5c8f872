"""Worker commands: run one, see the fleet (workers, claims, queues), free stuck claims."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from fhir_bridge.config import load_settings
from fhir_bridge.errors import InputError
from fhir_bridge.store import Store
from fhir_bridge.sync import Worker, fleet_status

from ._app import opened_store, print_json, reports_errors, setup_logging
from ._audit import audited


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
    setup_logging("INFO")
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


@reports_errors
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Workers alive, the work each has claimed, and the outbox, the patients enrolled,
    matched and held per connection."""
    settings = load_settings()
    modes = {n: c.effective_patient_mode for n, c in settings.connections.items()}
    with opened_store(settings) as store:
        report = fleet_status(store, datetime.now(UTC), patient_modes=modes)
    if as_json:
        print_json(report)
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
    for name, config in settings.connections.items():
        if config.enrol == "all":
            typer.echo(f"routing {name}: every patient (enrol = all)")
        else:
            typer.echo(f"routing {name}: {report['enrolled'].get(name, 0)} patients enrolled")
    for name, limits in sorted(report["limits"].items()):
        for item in limits["not_sent"]:
            typer.echo(
                f"not sent to {name}: {item['type']} ({item['waiting']} waiting): {item['reason']}"
            )
        for item in limits["refused_modes"] + limits["refused_interactions"]:
            typer.echo(f"refused by {name}: {item['reason']}")
    for name, per in sorted(report["patients"].items()):
        typer.echo(
            f"patients {name}: mode {per['mode']}, matched {per['matched']}, held {per['held']}"
            + (" (fhir-bridge held)" if per["held"] else "")
        )
    if report["orphaned_claims"]:
        typer.echo(f"claims of workers not alive: {report['orphaned_claims']}")


@reports_errors
@audited("maintenance")
def maintenance(
    dead_after: Annotated[
        float, typer.Option(help="Seconds without a heartbeat after which a worker is dead")
    ] = 90.0,
) -> None:
    """Free stuck claims: expired leases and those of workers that stopped answering."""
    with opened_store() as store:
        freed = store.workers.free_stuck_claims(datetime.now(UTC), timedelta(seconds=dead_after))
    typer.echo(f"freed {freed} claims")
