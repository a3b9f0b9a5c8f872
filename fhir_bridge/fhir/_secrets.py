"""Secrets: read from a file or an environment variable, and held so that no ``repr``,
traceback, log line or error message shows them."""

from __future__ import annotations

import os
from pathlib import Path

from fhir_bridge.errors import InputError


class Secret:
    """A string that does not show itself in ``repr``, tracebacks with locals, or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


def secret_from_env(name: str) -> str:
    """The value of environment variable ``name``; InputError (naming only the variable) if
    it is unset or empty."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise InputError(f"${name}", "environment variable is not set")
    return value


def secret_from_file(path: str | Path) -> str:
    """The text of a secret or key file, stripped; InputError if it cannot be read."""
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InputError(str(path), f"cannot read secret file ({type(exc).__name__})") from None
    if not value:
        raise InputError(str(path), "secret file is empty")
    return value


def secret_of(file: str | Path | None, env: str | None, what: str) -> str:
    """The secret of a setting named by file (first) or environment variable; InputError
    naming ``what`` when neither is given."""
    if file is not None:
        return secret_from_file(file)
    if env is not None:
        return secret_from_env(env)
    raise InputError("auth", f"{what} is required")
