"""Refusals: what a connection's server does not take, remembered between runs.

Push reads them before sending, so a run starts in the mode that works and sends nothing to
an endpoint the server has refused (see ``fhir_bridge.sync``). What was learnt under one
CapabilityStatement is forgotten when the statement changes, when it grows older than the
connection's memory allows, or when an operator says so (``fhir-bridge capabilities
--forget``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import delete, or_, select

from ._clock import utc
from ._database import Database
from ._tables import RefusalRow

Source = Literal["capability-statement", "run-time"]
SAID_LENGTH = 200
# what could name a resource or quote content in a server's diagnostics
_REFERENCE = re.compile(r"\b[A-Z][A-Za-z]+/[A-Za-z0-9\-.]+(/_history/[A-Za-z0-9\-.]+)?")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_URN = re.compile(r"urn:(uuid|oid):[A-Za-z0-9\-.]+")
_NUMBER = re.compile(r"\b\d{3,}\b")


@dataclass(frozen=True, slots=True)
class Refusal:
    """One thing a connection's server does not take (``what``: see :class:`RefusalRow`)."""

    connection: str
    what: str
    source: Source
    status: int | None
    said: str | None
    statement: str
    refused_at: datetime

    @property
    def resource_type(self) -> str | None:
        """The type of a ``<Type>:<interaction>`` refusal; None for a Bundle mode."""
        return self.what.split(":", 1)[0] if ":" in self.what else None

    @property
    def interaction(self) -> str:
        return self.what.split(":", 1)[-1]


def id_free(diagnostics: str | None) -> str | None:
    """The server's words without references, quoted values, URNs or long numbers, trimmed."""
    if not diagnostics:
        return None
    text = _URN.sub("<urn>", diagnostics)
    text = _REFERENCE.sub("<ref>", text)
    text = _QUOTED.sub("<value>", text)
    text = _NUMBER.sub("<n>", text)
    text = " ".join(text.split())
    return text[:SAID_LENGTH] or None


def _refusal(row: RefusalRow) -> Refusal:
    source: Source = "run-time" if row.source == "run-time" else "capability-statement"
    return Refusal(
        row.connection,
        row.what,
        source,
        row.status,
        row.said,
        row.statement,
        utc(row.refused_at),
    )


class Refusals:
    def __init__(self, db: Database) -> None:
        self._db = db

    def of(self, connection: str | None = None) -> list[Refusal]:
        """Every refusal remembered (of one connection), by connection and ``what``."""
        with self._db.session() as s:
            query = select(RefusalRow).order_by(RefusalRow.connection, RefusalRow.what)
            if connection is not None:
                query = query.where(RefusalRow.connection == connection)
            return [_refusal(r) for r in s.scalars(query)]

    def remember(
        self,
        connection: str,
        what: str,
        *,
        source: Source,
        statement: str,
        now: datetime,
        status: int | None = None,
        said: str | None = None,
    ) -> Refusal:
        """Keep (or refresh) one refusal; ``said`` is stored id-free and trimmed."""
        with self._db.session() as s:
            row = s.get(RefusalRow, (connection, what), with_for_update=self._db.postgres)
            if row is None:
                row = RefusalRow(connection=connection, what=what)
                s.add(row)
            row.source, row.status, row.said = source, status, id_free(said)
            row.statement, row.refused_at = statement, now
            s.flush()
            return _refusal(row)

    def remember_declared(
        self, connection: str, whats: Iterable[str], statement: str, now: datetime
    ) -> int:
        """What the CapabilityStatement rules out, kept unless already known; how many new."""
        wanted = set(whats)
        with self._db.session() as s:
            known = set(
                s.scalars(
                    select(RefusalRow.what).where(
                        RefusalRow.connection == connection, RefusalRow.what.in_(wanted)
                    )
                )
            )
            for what in sorted(wanted - known):
                s.add(
                    RefusalRow(
                        connection=connection,
                        what=what,
                        source="capability-statement",
                        status=None,
                        said=None,
                        statement=statement,
                        refused_at=now,
                    )
                )
            return len(wanted - known)

    def forget_stale(
        self, connection: str, statement: str, learnt_before: datetime | None = None
    ) -> int:
        """Forget what was learnt under another CapabilityStatement (or, with
        ``learnt_before``, refused at run time before then); how many were forgotten."""
        stale = RefusalRow.statement != statement
        if learnt_before is not None:
            stale = or_(
                stale,
                (RefusalRow.source == "run-time") & (RefusalRow.refused_at < learnt_before),
            )
        with self._db.session() as s:
            result = s.execute(delete(RefusalRow).where(RefusalRow.connection == connection, stale))
            return int(result.rowcount)  # type: ignore[attr-defined]

    def forget(self, connection: str) -> int:
        """Forget everything remembered about a connection's server; how many."""
        with self._db.session() as s:
            result = s.execute(delete(RefusalRow).where(RefusalRow.connection == connection))
            return int(result.rowcount)  # type: ignore[attr-defined]
