"""The CLI's part of the audit trail: each write command recorded as it ends, and
``fhir-bridge audit`` to read the trail.

A command marked :func:`audited` records one event once it has run (``ok``, or ``failed`` when
it ran and exits 1 because part of it failed; a command refused before it wrote anything, with
an error, is not recorded): the actor is
``cli:<OS user>``, the source this host, the action the command's name, the connection and
the record (patient, conflict) from its arguments; never a file's content.
"""

from __future__ import annotations

import getpass
import logging
import socket
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from fhir_bridge.config import load_settings
from fhir_bridge.errors import InputError
from fhir_bridge.store import AuditEvent, Store

from ._app import console, opened_store, print_json, reports_errors

P = ParamSpec("P")
R = TypeVar("R")
log = logging.getLogger("fhir_bridge.cli")

# the arguments that name the record a command acts on, and its kind
_RECORD_ARGS = (("conflict_id", "conflict"), ("patient_id", "patient"), ("patient", "patient"))


def cli_actor() -> str:
    """``cli:<OS user>`` (``cli:unknown`` where the user has no name)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def audited(
    action: str | Callable[[Mapping[str, Any]], str | None],
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Record the command in the audit trail when it ends; ``action`` is its name, or a
    function of its arguments giving the name (None: nothing written, nothing recorded)."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            name = action(kwargs) if callable(action) else action
            if name is None or kwargs.get("dry_run"):
                return fn(*args, **kwargs)
            try:
                result = fn(*args, **kwargs)
            except typer.Exit as exc:  # it ran: exit 1 when some of it failed (push, pull)
                _record(name, kwargs, "ok" if exc.exit_code == 0 else "failed")
                raise
            _record(name, kwargs, "ok")
            return result

        return wrapper

    return decorate


def _record(action: str, arguments: Mapping[str, Any], outcome: str) -> None:
    kind, record_id = None, None
    for argument, record_kind in _RECORD_ARGS:
        if arguments.get(argument) is not None:
            kind, record_id = record_kind, str(arguments[argument])
            break
    if kind is None and arguments.get("kind") and arguments.get("record_id"):
        kind, record_id = str(arguments["kind"]), str(arguments["record_id"])  # `delete`
    detail: dict[str, Any] = {}
    if arguments.get("ids"):
        detail["ids"] = [int(i) for i in arguments["ids"]]
    connection = arguments.get("connection")
    event = AuditEvent(
        actor=cli_actor(),
        action=action,
        at=datetime.now(UTC),
        kind=kind,
        record_id=record_id,
        connection=None if connection is None else str(connection),
        source=socket.gethostname(),
        outcome=outcome,
        detail=detail,
    )
    try:
        store = Store(load_settings().database_url, migrate=False)
        try:
            store.audit.add(event)
        finally:
            store.close()
    except Exception:  # a store that failed the command fails this too: the command said so
        log.warning("audit event not recorded", extra={"action": "audit.add"})


_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def since_of(value: str) -> datetime:
    """``--since``: an ISO time (UTC unless it says), or an age such as ``2h``, ``7d``."""
    text = value.strip()
    if text[-1:] in _UNITS and text[:-1].isdigit():
        return datetime.now(UTC) - timedelta(**{_UNITS[text[-1]]: int(text[:-1])})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            "--since", f"{value!r}: give an ISO time or an age (30m, 2h, 7d)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@reports_errors
def audit(
    since: Annotated[
        str | None, typer.Option(help="Only events at or after: an ISO time, or 30m, 2h, 7d")
    ] = None,
    actor: Annotated[
        str | None, typer.Option(help="An actor (cli:alice, apikey:ops) or a kind (worker)")
    ] = None,
    record: Annotated[str | None, typer.Option(help="A record id, or KIND/ID")] = None,
    limit: Annotated[int, typer.Option(help="At most this many events", min=1)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Who wrote what, when and from where: the audit trail (oldest first)."""
    when = None if since is None else since_of(since)
    with opened_store() as store:
        events = store.audit.query(since=when, actor=actor, record=record, limit=limit)
    if as_json:
        print_json([_as_json(e) for e in events])
        return
    if not events:
        typer.echo("no audit events")
        return
    out = console()
    for e in events:
        target = " ".join(
            part
            for part in (
                f"{e.kind}/{e.record_id}" if e.record_id else "",
                f"on {e.connection}" if e.connection else "",
            )
            if part
        )
        out.print(
            f"{e.id}  {e.at.isoformat(timespec='seconds')}  {e.actor}  {e.action}  "
            f"{target}  {e.outcome}  from {e.source or '-'}",
            markup=False,
            highlight=False,
        )


def _as_json(e: AuditEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": e.at.isoformat(),
        "actor": e.actor,
        "action": e.action,
        "kind": e.kind,
        "record_id": e.record_id,
        "connection": e.connection,
        "source": e.source,
        "outcome": e.outcome,
        "detail": e.detail,
    }
