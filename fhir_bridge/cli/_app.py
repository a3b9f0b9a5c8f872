"""What every command shares: the Typer app, common options, output helpers, and the one
place where fhir-bridge's errors become messages and exit codes.

Exit codes: 0 success; 2 invalid input or usage (message on stderr names file, record and
field); 1 any other failure. No tracebacks.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import wraps
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from fhir_bridge.config import Settings, load_settings
from fhir_bridge.errors import BridgeError, HandoffRefused, InputError, MappingError
from fhir_bridge.logs import LEVEL_ENV, configure
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import Connection, resolve_connection

app = typer.Typer(
    name="fhir-bridge",
    help="Sync care plans, goals and referrals between care management and FHIR R4 EHRs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

P = ParamSpec("P")
R = TypeVar("R")

ConnectionOption = Annotated[
    str | None, typer.Option("--connection", help="A connection from fhir-bridge.toml")
]
FhirUrlOption = Annotated[
    str | None, typer.Option("--fhir-url", help="An ad-hoc FHIR base URL, no auth")
]
PatientOption = Annotated[str | None, typer.Option("--patient", help="Only this patient's records")]


def fail(message: str, code: int) -> typer.Exit:
    """Say ``message`` on stderr; the exit to raise, with ``code``."""
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
            raise fail(f"invalid input ({len(exc.problems)} problems):\n{lines}", 2) from None
        except InputError as exc:
            raise fail(str(exc), 2) from None
        except HandoffRefused as exc:
            raise fail(f"{exc} (--strict)", 1) from None
        except BridgeError as exc:
            raise fail(str(exc), 1) from None

    return wrapper


def setup_logging(default_level: str = "WARNING") -> None:
    """Configure logging as ``[logging]`` and ``FHIR_BRIDGE_LOG_LEVEL`` say (unset: at
    ``default_level``); every command runs with it, ``serve`` and ``worker`` at INFO."""
    try:
        settings: Settings | None = load_settings()
    except InputError:  # the command reports a broken configuration itself
        settings = None
    config = None if settings is None else settings.logging
    try:
        configure(
            None if config is None else config.level,
            None if config is None else config.format,
            default_level=default_level,
        )
    except ValueError as exc:
        raise InputError(LEVEL_ENV, str(exc)) from None


def mapping_context(namespace: str | None) -> MappingContext:
    """The option's namespace, else the configured one (fhir-bridge.toml or the environment)."""
    return MappingContext(namespace or load_settings().namespace, datetime.now(UTC))


def console(*, stderr: bool = False) -> Console:
    """A console; piped output gets wide tables instead of 80 columns of wrapped cells."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 200)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False))
    sys.stdout.write("\n")


@contextmanager
def opened_store(settings: Settings | None = None) -> Iterator[Store]:
    store = Store((settings or load_settings()).database_url)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def connected(
    connection: str | None, fhir_url: str | None
) -> Iterator[tuple[Settings, Connection, Store]]:
    """The settings, the FHIR server named on the command line, and the store."""
    settings = load_settings()
    target = resolve_connection(settings, connection, fhir_url)
    with opened_store(settings) as store:
        yield settings, target, store
