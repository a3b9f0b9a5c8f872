"""The ``fhir-bridge`` command line.

Each command lives in the module of its concept (``_records``, ``_enrolments``, ``_sync``,
``_subscriptions``, ``_handoffs``, ``_fleet``, ``_service``, ``_matches``, ``_reports``,
``_audit``); ``_app`` holds what
they share, including the one place where errors become messages and exit codes (0 success;
2 invalid input or usage; 1 any other failure; no tracebacks). The commands are registered
here, in the order ``--help`` lists them.
"""

from __future__ import annotations

import sys

import typer

from fhir_bridge.errors import InputError
from fhir_bridge.sandbox.cli import app as sandbox_app

from . import (
    _audit,
    _enrolments,
    _fleet,
    _handoffs,
    _matches,
    _records,
    _reports,
    _service,
    _subscriptions,
    _sync,
)
from ._app import app, setup_logging

__all__ = ["app", "main"]

app.add_typer(sandbox_app, name="sandbox")

app.command()(_records.schema)
app.command("map")(_records.map_)
app.command("import")(_records.import_)
app.command()(_records.load)
app.command()(_records.get)
app.command()(_records.delete)
app.command()(_enrolments.enrol)
app.command()(_enrolments.unenrol)
app.command()(_sync.push)
app.command()(_sync.pull)
app.command("sync")(_sync.sync_)
app.command()(_sync.conflicts)
app.command()(_sync.resolve)
app.command("subscribe")(_subscriptions.subscribe_)
app.command("unsubscribe")(_subscriptions.unsubscribe_)
app.add_typer(_subscriptions.subscriptions, name="subscriptions")
app.command()(_service.apikey)
app.command()(_audit.audit)
app.command()(_fleet.worker)
app.command()(_fleet.status)
app.command()(_fleet.maintenance)
app.command()(_service.serve)
app.command()(_handoffs.handoff)
app.command()(_handoffs.handoffs)
app.command()(_handoffs.receive)
app.command("dead-letters")(_sync.dead_letters)
app.command()(_sync.retry)
app.command()(_sync.capabilities)
app.command()(_matches.match)
app.command()(_matches.held)
app.command()(_reports.minutes)
app.command()(_service.demo)


def main() -> None:
    try:
        setup_logging()
    except InputError as exc:
        typer.echo(f"fhir-bridge: {exc}", err=True)
        sys.exit(2)
    try:
        app()
    except Exception as exc:
        typer.echo(f"fhir-bridge: error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
