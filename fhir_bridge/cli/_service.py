"""The HTTP service and what goes with it: serve, API keys, the demo."""

from __future__ import annotations

import logging
import os
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from fhir_bridge.config import CONFIG_ENV, Settings, load_settings
from fhir_bridge.demo import DASHBOARD
from fhir_bridge.demo import run as run_demo
from fhir_bridge.errors import InputError, MissingExtra
from fhir_bridge.sandbox import SandboxError
from fhir_bridge.sync import Worker

from ._app import fail, opened_store, reports_errors, setup_logging


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
    with opened_store() as store:
        typer.echo(store.api_keys.create(name, scopes, datetime.now(UTC)))


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
    setup_logging("INFO")
    settings = load_settings()
    loop_worker = (
        Worker(settings, push_every=push_every, pull_every=pull_every) if with_worker else None
    )
    _serve(settings, host, port, loop_worker)


def _serve(settings: Settings, host: str, port: int, loop_worker: Worker | None) -> None:
    try:  # the HTTP service is the optional part fhir-bridge[server]
        import uvicorn  # noqa: PLC0415

        from fhir_bridge.api import create_app  # noqa: PLC0415
    except ImportError as exc:
        raise MissingExtra("server", exc.name or "fastapi") from None
    # uvicorn stops gracefully on SIGTERM/SIGINT, then raises the signal again for the handler
    # it found: let that be a no-op, so a requested stop ends with exit status 0
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
    # uvicorn's own loggers go through fhir-bridge's handler (log_config=None): one format
    uvicorn.run(
        create_app(settings, worker=loop_worker),
        host=host,
        port=port,
        log_config=None,
        log_level=logging.getLogger().getEffectiveLevel(),
    )
    typer.echo("service stopped", err=True)


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
        raise fail(f"{exc.message}\n{exc.log_tail}", 1) from None
    if failures:
        raise fail(f"{failures} demo steps failed", 1)
    if keep_running:
        os.environ[CONFIG_ENV] = str(out / "fhir-bridge.toml")
        settings = load_settings()
        with opened_store(settings) as store:
            key = store.api_keys.create("demo", ["admin"], datetime.now(UTC))
        typer.echo(f"dashboard: {DASHBOARD} (API key: {key}); Ctrl-C stops", err=True)
        _serve(settings, "127.0.0.1", 8000, Worker(settings))
