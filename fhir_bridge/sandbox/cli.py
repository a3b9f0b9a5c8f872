"""``fhir-bridge sandbox ...``: run the local HAPI FHIR server.

Mounted by the main CLI with ``app.add_typer(sandbox_app, name="sandbox")``. Exit codes: 0 done,
1 a :class:`SandboxError` (message and log tail on stderr), 3 ``status`` of a stopped sandbox.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._error import SandboxError
from ._manager import SandboxInfo, logs, reset, start, status, stop
from ._paths import DEFAULT_PORT

app = typer.Typer(
    help="Run the local HAPI FHIR server (R4) that tests and demos talk to.",
    no_args_is_help=True,
    add_completion=False,
)

Port = Annotated[int, typer.Option("--port", "-p", help="Port on 127.0.0.1")]
StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="State directory (pid, log, database); default $FHIR_BRIDGE_SANDBOX_DIR/port-PORT",
        show_default=False,
    ),
]


def _progress(message: str) -> None:
    typer.echo(message, err=True)


def _fail(exc: SandboxError) -> typer.Exit:
    typer.echo(f"fhir-bridge sandbox: {exc.message}", err=True)
    if exc.log_tail:
        typer.echo("--- last lines of the log ---", err=True)
        typer.echo(exc.log_tail, err=True)
    return typer.Exit(1)


def _describe(info: SandboxInfo) -> str:
    if not info.running:
        return f"not running (port {info.port}, state {info.state_dir})"
    health = "ready" if info.healthy else "starting or not answering"
    return (
        f"running: {info.base_url} (pid {info.pid}, {health}, validation "
        f"{'on' if info.validate else 'off'}, state {info.state_dir})"
    )


@app.command("start")
def start_command(
    port: Port = DEFAULT_PORT,
    validate: Annotated[
        bool, typer.Option("--validate", help="Refuse requests that fail base R4 validation")
    ] = False,
    state_dir: StateDir = None,
) -> None:
    """Build on first use, start in the background, wait until ready; print the base URL."""
    try:
        info = start(port, validate, state_dir, progress=_progress)
    except SandboxError as exc:
        raise _fail(exc) from None
    typer.echo(info.base_url)


@app.command("stop")
def stop_command(port: Port = DEFAULT_PORT, state_dir: StateDir = None) -> None:
    """Stop the server that `sandbox start` started."""
    try:
        stopped = stop(port, state_dir)
    except SandboxError as exc:
        raise _fail(exc) from None
    typer.echo("stopped" if stopped else f"not running (port {port})", err=True)


@app.command("status")
def status_command(port: Port = DEFAULT_PORT, state_dir: StateDir = None) -> None:
    """Whether the server runs and answers (exit code 3 when it does not run)."""
    info = status(port, state_dir)
    typer.echo(_describe(info))
    if not info.running:
        raise typer.Exit(3)


@app.command("logs")
def logs_command(
    port: Port = DEFAULT_PORT,
    lines: Annotated[int, typer.Option("-n", "--lines", help="How many lines")] = 50,
    state_dir: StateDir = None,
) -> None:
    """The last lines of the server log."""
    text = logs(lines, port, state_dir)
    if text:
        typer.echo(text)


@app.command("reset")
def reset_command(port: Port = DEFAULT_PORT, state_dir: StateDir = None) -> None:
    """Stop, delete the database, start again empty with the same options; print the base URL."""
    try:
        info = reset(port, state_dir, progress=_progress)
    except SandboxError as exc:
        raise _fail(exc) from None
    typer.echo(info.base_url)
