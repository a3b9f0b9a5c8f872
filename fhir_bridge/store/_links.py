"""Links: where each emitted resource lives on a connection's server, and what we last sent."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, insert, select, tuple_, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from ._database import Database
from ._leases import Claim, fence
from ._tables import LinkRow, OutboxRow, OutboxStatus


@dataclass(frozen=True, slots=True)
class LinkHead:
    """A link without its two resource copies: enough to tell our own write coming back (the
    version), to point a reference at our record (the identifier) and to tell a rendering
    unchanged since it was sent (the hash), without decoding JSON."""

    resource_type: str
    resource_id: str
    identifier: str
    kind: str | None
    record_id: str | None
    version_id: str | None
    sent_hash: str | None = None


@dataclass(frozen=True, slots=True)
class Link:
    connection: str
    resource_type: str
    identifier: str
    kind: str | None
    record_id: str | None
    resource_id: str
    version_id: str | None
    last_updated: str | None
    sent_hash: str | None
    sent_json: dict[str, Any] | None
    server_json: dict[str, Any] | None

    @property
    def head(self) -> LinkHead:
        return LinkHead(*(getattr(self, name) for name in _HEAD_FIELDS))


_FIELDS = tuple(f.name for f in fields(Link))
_HEAD_FIELDS = tuple(f.name for f in fields(LinkHead))
_HEAD_COLUMNS = tuple(getattr(LinkRow, name) for name in _HEAD_FIELDS)


def link_of(row: LinkRow) -> Link:
    return Link(*(getattr(row, name) for name in _FIELDS))


_link = link_of
# ids per ``IN (...)`` list: well under SQLite's and PostgreSQL's parameter limits
_CHUNK = 500


class Links:
    def __init__(self, db: Database) -> None:
        self._db = db

    def find(
        self, connection: str, resource_type: str, identifiers: Sequence[str]
    ) -> dict[str, Link]:
        """The links of these identifiers (of one type on one connection), by identifier."""
        if not identifiers:
            return {}
        with self._db.session() as s:
            rows = s.scalars(
                select(LinkRow).where(
                    LinkRow.connection == connection,
                    LinkRow.resource_type == resource_type,
                    LinkRow.identifier.in_(identifiers),
                )
            )
            return {r.identifier: _link(r) for r in rows}

    def find_all(
        self, connection: str, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], Link]:
        """The links of these ``(resource type, identifier)`` pairs on one connection, by
        pair (by primary key: one query per type and chunk of identifiers)."""
        with self._db.session() as s:
            return {
                (r.resource_type, r.identifier): _link(r)
                for where in _per_type(connection, LinkRow.identifier, keys)
                for r in s.scalars(select(LinkRow).where(where))
            }

    def heads_of(
        self, connection: str, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], LinkHead]:
        """As :meth:`find_all`, without the resource copies (none is read or decoded)."""
        with self._db.session() as s:
            return {
                (r.resource_type, r.identifier): LinkHead(*r)
                for where in _per_type(connection, LinkRow.identifier, keys)
                for r in s.execute(select(*_HEAD_COLUMNS).where(where))
            }

    def of_records(
        self, connection: str, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], list[Link]]:
        """The links of these records (``(kind, record id)``) on one connection, by record
        (indexed: ``ix_links_record``); a record with none is left out."""
        found: dict[tuple[str, str], list[Link]] = {}
        by_kind: dict[str, set[str]] = {}
        for kind, record_id in keys:
            by_kind.setdefault(kind, set()).add(record_id)
        with self._db.session() as s:
            for kind, ids in by_kind.items():
                ordered = sorted(ids)
                for i in range(0, len(ordered), _CHUNK):
                    rows = s.scalars(
                        select(LinkRow).where(
                            LinkRow.connection == connection,
                            LinkRow.kind == kind,
                            LinkRow.record_id.in_(ordered[i : i + _CHUNK]),
                        )
                    )
                    for r in rows:
                        found.setdefault((kind, str(r.record_id)), []).append(_link(r))
        return found

    def of_connection(self, connection: str) -> list[Link]:
        """Every link of a connection in one list (small connections, tests); a panel's
        worth is read with :meth:`stream`."""
        return list(self.stream(connection))

    def stream(self, connection: str, page_size: int = _CHUNK) -> Iterator[Link]:
        """Every link of a connection, page by page (keyset paging on the primary key, one
        short transaction per page): memory holds one page, however many links there are."""
        after: tuple[str, str] | None = None
        while True:
            with self._db.session() as s:
                query = select(LinkRow).where(LinkRow.connection == connection)
                if after is not None:
                    query = query.where(tuple_(LinkRow.resource_type, LinkRow.identifier) > after)
                rows = s.scalars(
                    query.order_by(LinkRow.resource_type, LinkRow.identifier).limit(page_size)
                ).all()
                page = [_link(r) for r in rows]
            yield from page
            if len(page) < page_size:
                return
            after = (page[-1].resource_type, page[-1].identifier)

    def by_server_id(self, connection: str) -> dict[str, Link]:
        """Every link of a connection, by the server's ``Type/id`` (all in memory: pull looks
        them up per page with :meth:`by_server_ids` instead)."""
        return {f"{x.resource_type}/{x.resource_id}": x for x in self.stream(connection)}

    def by_server_ids(self, connection: str, keys: Iterable[str]) -> dict[str, Link]:
        """The links of these server resources (``Type/id``), by that key; keys we have no
        link for are absent. Indexed (``ix_links_server``), a few queries per call."""
        with self._db.session() as s:
            return {
                f"{r.resource_type}/{r.resource_id}": _link(r)
                for where in _per_type(connection, LinkRow.resource_id, _split(keys))
                for r in s.scalars(select(LinkRow).where(where))
            }

    def heads_by_server_ids(self, connection: str, keys: Iterable[str]) -> dict[str, LinkHead]:
        """As :meth:`by_server_ids`, without the resource copies (none is read or decoded)."""
        with self._db.session() as s:
            return {
                f"{r.resource_type}/{r.resource_id}": LinkHead(*r)
                for where in _per_type(connection, LinkRow.resource_id, _split(keys))
                for r in s.execute(select(*_HEAD_COLUMNS).where(where))
            }

    def patients(self, connection: str, patient_id: str | None = None) -> dict[str, str]:
        """Server ``Patient/id`` -> internal patient id, of the patients linked on the
        connection (ids only: no resource copies are read)."""
        with self._db.session() as s:
            query = select(LinkRow.resource_id, LinkRow.record_id).where(
                LinkRow.connection == connection,
                LinkRow.resource_type == "Patient",
                LinkRow.record_id.is_not(None),
            )
            if patient_id is not None:
                query = query.where(LinkRow.record_id == patient_id)
            return {f"Patient/{rid}": str(pid) for rid, pid in s.execute(query)}

    def save(self, links: Iterable[Link], now: datetime, lease: Claim | None = None) -> None:
        with self._db.session() as s:
            fence(s, lease, now, postgres=self._db.postgres)
            for link in links:
                save(s, link, now)

    def distrust(self, connection: str, resource_type: str, identifier: str, now: datetime) -> None:
        """Forget what we believe we last sent for one resource, and queue its record again.

        For a write that reached the server after its worker lost the lease: the next push
        renders the record afresh and writes it over whatever the server holds.
        """
        with self._db.session() as s:
            row = s.get(LinkRow, (connection, resource_type, identifier))
            if row is None:
                return
            row.sent_hash = None
            if row.kind and row.record_id:
                s.execute(
                    update(OutboxRow)
                    .where(
                        OutboxRow.connection == connection,
                        OutboxRow.kind == row.kind,
                        OutboxRow.record_id == row.record_id,
                        OutboxRow.status == OutboxStatus.done,
                    )
                    .values(status=OutboxStatus.pending, next_attempt_at=now, updated_at=now)
                )


def save_all(s: Session, links: Sequence[Link], now: datetime) -> None:
    """Insert or replace several links: the keys that exist read in one query per connection
    (keys only, no resource copies decoded), then one INSERT and one UPDATE statement, each
    executed with many parameter sets (no ORM object per link). The last link of a key wins."""
    last = {(x.connection, x.resource_type, x.identifier): x for x in links}
    by_connection: dict[str, set[str]] = {}
    for connection, _, identifier in last:
        by_connection.setdefault(connection, set()).add(identifier)
    existing: set[tuple[str, str, str]] = set()
    for connection, identifiers in by_connection.items():
        ordered = sorted(identifiers)
        for at in range(0, len(ordered), _CHUNK):
            keys = select(LinkRow.connection, LinkRow.resource_type, LinkRow.identifier).where(
                LinkRow.connection == connection, LinkRow.identifier.in_(ordered[at : at + _CHUNK])
            )
            existing.update((c, t, i) for c, t, i in s.execute(keys))
    rows = {key: {**_values(link), "synced_at": now} for key, link in last.items()}
    new = [row for key, row in rows.items() if key not in existing]
    changed = [row for key, row in rows.items() if key in existing]
    if new:
        s.execute(insert(LinkRow), new)
    if changed:
        s.execute(update(LinkRow), changed)  # by primary key, one statement many times


def _values(link: Link) -> dict[str, Any]:
    return {name: getattr(link, name) for name in _FIELDS}


def save(s: Session, link: Link, now: datetime) -> None:
    """Insert or replace one link."""
    s.merge(LinkRow(**_values(link), synced_at=now))


def _split(keys: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Server ``Type/id`` keys as ``(type, id)`` pairs (a malformed key is left out)."""
    for key in keys:
        resource_type, _, resource_id = key.partition("/")
        if resource_id and "/" not in resource_id:
            yield resource_type, resource_id


def _per_type(
    connection: str, column: InstrumentedAttribute[str], keys: Iterable[tuple[str, str]]
) -> Iterator[ColumnElement[bool]]:
    """Conditions picking the links of these ``(resource type, value of column)`` pairs: one
    per type and chunk of values, each a statement of its own (indexed: the primary key for
    identifiers, ``ix_links_server`` for server ids)."""
    values: dict[str, set[str]] = {}
    for resource_type, value in keys:
        values.setdefault(resource_type, set()).add(value)
    for resource_type, wanted in values.items():
        ordered = sorted(wanted)
        for i in range(0, len(ordered), _CHUNK):
            yield and_(
                LinkRow.connection == connection,
                LinkRow.resource_type == resource_type,
                column.in_(ordered[i : i + _CHUNK]),
            )
