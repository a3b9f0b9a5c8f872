"""Errors raised by fhir-bridge.

Every error fhir-bridge raises on purpose derives from :class:`BridgeError`::

    BridgeError
    ├── InputError                 a file or document could not be read (file, line, reason)
    └── MappingError               records that cannot be translated; carries every Problem
                                   (path, reason) found, not just the first

Later layers (FHIR client, sync, store) add their own branches under BridgeError.
"""

from __future__ import annotations

from dataclasses import dataclass


class BridgeError(Exception):
    """fhir-bridge could not do what was asked."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input, located by a dotted field path."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class MappingError(BridgeError):
    """A record or resource cannot be translated; ``problems`` lists every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems) or "invalid input")

    def prefixed(self, prefix: str) -> MappingError:
        """The same problems with ``prefix`` put before each path."""
        return MappingError(
            [Problem(f"{prefix}.{p.path}" if p.path else prefix, p.reason) for p in self.problems]
        )


class InputError(BridgeError):
    """A file could not be read as the expected kind of document."""

    def __init__(self, source: str, reason: str, line: int | None = None) -> None:
        self.source = source
        self.reason = reason
        self.line = line
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {reason}")
