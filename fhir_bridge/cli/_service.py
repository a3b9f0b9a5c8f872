"""The HTTP service and what goes with it: serve, API keys, the demo."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from fhir_bridge.config import CONFIG_ENV, Settings, load_settings
from fhir_bridge.demo import DASHBOARD
from fhir_bridge.demo import run as run_demo
from fhir_bridge.errors import InputError, MissingExtra
from fhir_bridge.sandbox import SandboxError
from fhir_bridge.store import ApiKey
from fhir_bridge.sync import Worker

from ._app import fail, opened_store, print_json, reports_errors, setup_logging
from ._audit import audited

_EXPIRY_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
_ACTIONS = ("create", "list", "revoke", "rotate")


def expires_in(value: str | None, now: datetime) -> datetime | None:
    """``--expires-in``: ``90d``, ``12h`` or ``30m`` from now (None: never expires)."""
    if value is None:
        return None
    text = value.strip()
    unit = _EXPIRY_UNITS.get(text[-1:])
    if unit is None or not text[:-1].isdigit() or int(text[:-1]) < 1:
        raise InputError("--expires-in", f"{value!r}: give a positive count of d, h or m (90d)")
    try:
        return now + timedelta(**{unit: int(text[:-1])})
    except OverflowError:
        raise InputError("--expires-in", f"{value!r}: too far in the future") from None


def _key_action(arguments: Mapping[str, Any]) -> str | None:
    action = arguments.get("action")
    return None if action == "list" else f"apikey.{action}"


@reports_errors
@audited(_key_action)
def apikey(
    action: Annotated[str, typer.Argument(help="create, list, revoke or rotate")],
    name: Annotated[
        str | None, typer.Option(help="Who or what uses the key (create: 'default')")
    ] = None,
    scope: Annotated[
        list[str] | None, typer.Option(help="read, write or admin (repeatable; create)")
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option("--expires-in", help="create/rotate: the key stops working after 90d, 12h"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="list: print JSON")] = False,
) -> None:
    """Manage the HTTP service's API keys. create and rotate print the new key once (only its
    hash is stored); list never shows a key; revoke and rotate act on every working key of
    --name at once (rotate: one new key with their scopes replaces them)."""
    if action not in _ACTIONS:
        raise InputError("ACTION", f"{action!r}: use create, list, revoke or rotate")
    now = datetime.now(UTC)
    if action == "list":
        with opened_store() as store:
            _print_keys(store.api_keys.list(), now, as_json)
        return
    if action in ("revoke", "rotate") and name is None:
        raise InputError("--name", f"apikey {action} needs the --name of the key")
    if action == "revoke" and expires is not None:
        raise InputError("--expires-in", "only create and rotate take an expiry")
    until = expires_in(expires, now)
    with opened_store() as store:
        if action == "create":
            scopes = scope or ["read"]
            unknown = [s for s in scopes if s not in ("read", "write", "admin")]
            if unknown:
                raise InputError(
                    "--scope", f"unknown scope {unknown[0]!r}; use read, write or admin"
                )
            typer.echo(store.api_keys.create(name or "default", scopes, now, expires_at=until))
        elif action == "revoke":
            count = store.api_keys.revoke(str(name), now)
            if not count:
                raise InputError("--name", f"no working key named {name!r}")
            typer.echo(f"revoked {count} key{'s' if count != 1 else ''} named {name}", err=True)
        else:
            rotated = store.api_keys.rotate(str(name), now, expires_at=until)
            if rotated is None:
                raise InputError("--name", f"no working key named {name!r}")
            typer.echo(rotated[0])
            granted = ", ".join(rotated[1])
            typer.echo(f"rotated {name} ({granted}): the old keys are revoked", err=True)


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")


def _print_keys(keys: list[ApiKey], now: datetime, as_json: bool) -> None:
    if as_json:
        print_json(
            [
                {
                    "id": k.id,
                    "name": k.name,
                    "scopes": list(k.scopes),
                    "state": k.state(now),
                    "created_at": _when(k.created_at),
                    "expires_at": _when(k.expires_at),
                    "revoked_at": _when(k.revoked_at),
                }
                for k in keys
            ]
        )
        return
    if not keys:
        typer.echo("no API keys")
        return
    for k in keys:
        typer.echo(
            f"{k.id}  {k.name}  {','.join(k.scopes)}  {k.state(now)}  "
            f"created {_when(k.created_at)}  expires {_when(k.expires_at) or 'never'}"
        )


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
