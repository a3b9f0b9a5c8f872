"""REST-hook subscriptions: subscribe, unsubscribe, and each Subscription's secret."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from fhir_bridge.config import WEBHOOK_SECRET_HEADER, load_settings
from fhir_bridge.errors import InputError
from fhir_bridge.sync import (
    ROTATION_GRACE,
    resolve_connection,
    rotate_secrets,
    subscribe,
    unsubscribe,
)

from ._app import ConnectionOption, console, opened_store, reports_errors
from ._audit import audited

CallbackOption = Annotated[
    str, typer.Option("--callback", help="Base URL where `fhir-bridge serve` is reachable")
]
ConnectionArgument = Annotated[str, typer.Argument(help="A connection from fhir-bridge.toml")]

subscriptions = typer.Typer(
    help="The secrets the EHR's Subscriptions send with their notifications.",
    no_args_is_help=True,
    add_completion=False,
)


@reports_errors
@audited("subscribe")
def subscribe_(connection: ConnectionOption = None, callback: CallbackOption = "") -> None:
    """Create (once) REST-hook Subscriptions for CarePlan, Goal, ServiceRequest and Task, each
    with a secret of its own (only its hash is stored)."""
    settings = load_settings()
    target = resolve_connection(settings, connection, None)
    if not callback.startswith(("http://", "https://")):
        raise InputError("--callback", "an http(s) URL where fhir-bridge serve listens")

    async def run() -> tuple[int, int]:
        with opened_store(settings) as store:
            async with target.client() as client:
                return await subscribe(
                    client,
                    store,
                    target.name,
                    callback,
                    header=WEBHOOK_SECRET_HEADER,
                    now=datetime.now(UTC),
                )

    created, kept = asyncio.run(run())
    typer.echo(f"subscriptions: {created} created, {kept} already there")


@reports_errors
@audited("unsubscribe")
def unsubscribe_(connection: ConnectionOption = None, callback: CallbackOption = "") -> None:
    """Delete the Subscriptions `subscribe` created for this callback, and their secrets."""
    settings = load_settings()
    target = resolve_connection(settings, connection, None)

    async def run() -> int:
        with opened_store(settings) as store:
            async with target.client() as client:
                return await unsubscribe(client, store, target.name, callback)

    typer.echo(f"subscriptions deleted: {asyncio.run(run())}")


@subscriptions.command("rotate-secret")
@reports_errors
@audited("subscriptions rotate-secret")
def rotate_secret(connection: ConnectionArgument) -> None:
    """Give each of the connection's Subscriptions a new secret (updated on the EHR); the old
    ones still open the webhook for a few minutes, for notifications on their way."""
    settings = load_settings()
    target = resolve_connection(settings, connection, None)

    async def run() -> list[str]:
        with opened_store(settings) as store:
            async with target.client() as client:
                return await rotate_secrets(
                    client, store, target.name, WEBHOOK_SECRET_HEADER, datetime.now(UTC)
                )

    renewed = asyncio.run(run())
    if not renewed:
        raise InputError(
            "CONNECTION",
            f"{target.name} has no Subscription with a secret: run `fhir-bridge subscribe` first",
        )
    minutes = int(ROTATION_GRACE.total_seconds() // 60)
    typer.echo(
        f"new secrets for {', '.join(renewed)}; the old ones stop working in {minutes} minutes"
    )


@subscriptions.command("list")
@reports_errors
def list_(connection: ConnectionArgument) -> None:
    """The connection's valid secrets: type, Subscription, issued, expiry (never the secret)."""
    settings = load_settings()
    name = resolve_connection(settings, connection, None).name
    with opened_store(settings) as store:
        found = store.subscription_secrets.valid(name, datetime.now(UTC))
    table = Table("type", "subscription", "issued", "expires", "endpoint")
    for s in found:
        table.add_row(
            s.resource_type,
            s.subscription_id or "(not on the EHR)",
            s.created_at.isoformat(timespec="seconds"),
            s.expires_at.isoformat(timespec="seconds") if s.expires_at else "-",
            s.endpoint,
        )
    console().print(table)
    typer.echo(f"{len(found)} valid secrets")
