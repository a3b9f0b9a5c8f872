"""``fhir-bridge sandbox ...``: run the local HAPI FHIR server (and, for the SMART-protected
profiles, the local Keycloak that issues its tokens).

Mounted by the main CLI with ``app.add_typer(sandbox_app, name="sandbox")``. Exit codes: 0 done,
1 a :class:`SandboxError` (message and log tail on stderr), 3 ``status`` of a stopped sandbox.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ._error import SandboxError
from ._keycloak import KEYCLOAK_PORT
from ._keycloak import base_url as keycloak_url
from ._keycloak import start as start_keycloak
from ._keycloak import stop as stop_keycloak
from ._keys import ALGORITHMS, Algorithm
from ._manager import SandboxInfo, logs, reset, start, status, stop
from ._options import DEFAULT_PROFILE, IMPLEMENTATION_GUIDES, PROFILES, SmartServer
from ._paths import DEFAULT_PORT
from ._smart_setup import SmartSetup, protected, set_up

ProfileName = StrEnum("ProfileName", {name: name for name in PROFILES})  # type: ignore[misc]
"""The profiles as Typer's choice (``--profile open|epic-like|oracle-like``)."""
OPEN = ProfileName(DEFAULT_PROFILE)
KeyAlgorithm = StrEnum("KeyAlgorithm", {name: name for name in ALGORITHMS})  # type: ignore[misc]
"""The client key's algorithms as Typer's choice (``--alg RS384|ES384``)."""
RS384 = KeyAlgorithm("RS384")
GuideName = StrEnum("GuideName", {name: name for name in IMPLEMENTATION_GUIDES})  # type: ignore[misc]
"""The implementation guides as Typer's choice (``--ig us-core-7|us-core-6.1``)."""

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
    smart = f"SMART tokens from {info.smart.issuer}" if info.smart else "no authorization"
    validation = ("on" if info.validate else "off") + (f" ({info.ig})" if info.ig else "")
    return (
        f"running: {info.base_url} (pid {info.pid}, {health}, validation {validation}, "
        f"profile {info.profile}, {smart}, "
        f"state {info.state_dir})"
    )


def _smart(issuer: str | None, jwks_url: str | None, token_url: str | None) -> SmartServer | None:
    given = [v for v in (issuer, jwks_url, token_url) if v]
    if not given:
        return None
    if len(given) != 3:
        raise typer.BadParameter(
            "give all three of --smart-issuer, --smart-jwks-url and --smart-token-url, or none"
        )
    try:
        return SmartServer(str(issuer), str(jwks_url), str(token_url))
    except SandboxError as exc:
        raise typer.BadParameter(exc.message) from None


@app.command("start")
def start_command(  # noqa: PLR0917 (Typer passes options by keyword)
    port: Port = DEFAULT_PORT,
    validate: Annotated[
        bool, typer.Option("--validate", help="Refuse requests that fail base R4 validation")
    ] = False,
    ig: Annotated[
        GuideName | None,
        typer.Option(
            "--ig",
            help="With --validate: validate against this US Core package, by resource type",
            show_default=False,
        ),
    ] = None,
    state_dir: StateDir = None,
    profile: Annotated[
        ProfileName,
        typer.Option(
            "--profile",
            help="What the server refuses, as an EHR of that kind does (docs/sandbox.md)",
        ),
    ] = OPEN,
    smart_issuer: Annotated[
        str | None,
        typer.Option(help="SMART: accept only tokens from this issuer", show_default=False),
    ] = None,
    smart_jwks_url: Annotated[
        str | None,
        typer.Option(help="SMART: the issuer's signing keys (JWKS)", show_default=False),
    ] = None,
    smart_token_url: Annotated[
        str | None,
        typer.Option(help="SMART: the token endpoint clients are told", show_default=False),
    ] = None,
    alg: Annotated[
        KeyAlgorithm,
        typer.Option(
            "--alg",
            help="epic-like/oracle-like: the signing algorithm of the generated client key",
        ),
    ] = RS384,
) -> None:
    """Build on first use, start in the background, wait until ready; print the base URL.

    epic-like and oracle-like require SMART Backend Services: unless --smart-* name another
    authorization server, the local Keycloak is started (port 8180), a client with a fresh
    key pair is registered, the token URL is printed on a second line, and a ready
    fhir-bridge.toml connection block is written to the state directory."""
    smart = _smart(smart_issuer, smart_jwks_url, smart_token_url)
    if ig is not None and not validate:
        raise typer.BadParameter("--ig needs --validate", param_hint="--ig")
    setup: SmartSetup | None = None
    try:
        if smart is None and protected(str(profile)):
            setup = set_up(
                str(profile),
                port,
                algorithm=_algorithm(str(alg)),
                state_dir=state_dir,
                progress=_progress,
            )
            urls = setup.auth_server
            smart = SmartServer(urls.issuer, urls.jwks_url, urls.token_url)
        info = start(
            port,
            validate,
            state_dir,
            profile=str(profile),
            smart=smart,
            ig=str(ig) if ig is not None else None,
            progress=_progress,
        )
    except SandboxError as exc:
        raise _fail(exc) from None
    typer.echo(info.base_url)
    if setup is not None:
        typer.echo(setup.auth_server.token_url)
        typer.echo(f"connection settings written to {setup.config_file}:", err=True)
        typer.echo(setup.toml(), err=True)


def _algorithm(name: str) -> Algorithm:
    return "ES384" if name == "ES384" else "RS384"


@app.command("stop")
def stop_command(
    port: Port = DEFAULT_PORT,
    state_dir: StateDir = None,
    authz: Annotated[
        bool,
        typer.Option(
            "--authz",
            help="Stop the local Keycloak too (shared by every SMART-protected sandbox)",
        ),
    ] = False,
) -> None:
    """Stop the server that `sandbox start` started (with --authz, the Keycloak too)."""
    try:
        stopped = stop(port, state_dir)
        keycloak = stop_keycloak(KEYCLOAK_PORT) if authz else False
    except SandboxError as exc:
        raise _fail(exc) from None
    typer.echo("stopped" if stopped else f"not running (port {port})", err=True)
    if authz:
        typer.echo("Keycloak stopped" if keycloak else "Keycloak was not running", err=True)


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
    """Stop, delete the database, start again empty with the same options; print the base URL.

    A sandbox whose tokens come from the local Keycloak gets it started first when it is not
    running (the client and its key are kept)."""
    try:
        before = status(port, state_dir)
        if before.smart is not None and before.smart.issuer.startswith(keycloak_url()):
            start_keycloak(progress=_progress)
        info = reset(port, state_dir, progress=_progress)
    except SandboxError as exc:
        raise _fail(exc) from None
    typer.echo(info.base_url)
