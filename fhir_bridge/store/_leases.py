"""Leases: time-limited claims on work, so several workers share one database safely.

A lease is a row keyed by (connection, scope, key) holding the worker that has it, a token
new on every claim, and an expiry. Taking one is an UPDATE of an expired row or an INSERT
that does nothing on conflict, so two workers never both get it. Completing work re-reads
the row (locked, on PostgreSQL) in the completing transaction: only the token's holder,
before expiry, records a result (:func:`check`), else :class:`LeaseLost`. :class:`Leases` is
the repository; the functions below are the SQL it (and the other repositories' fencing) runs.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from fhir_bridge.errors import LeaseLost

from ._clock import utc
from ._database import Database
from ._tables import LeaseRow, OutboxRow, OutboxStatus


@dataclass(frozen=True, slots=True)
class Claim:
    """A lease this worker holds: present it when completing the work."""

    connection: str
    scope: str
    key: str
    holder: str
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease on record, whoever holds it (expired ones stay until freed or taken over)."""

    connection: str
    scope: str
    key: str
    holder: str
    expires_at: datetime


class Leases:
    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(
        self,
        connection: str,
        scope: str,
        key: str,
        *,
        holder: str,
        now: datetime,
        seconds: float,
        dead: Sequence[str] = (),
    ) -> Claim | None:
        """Lease one unit of work (None: another worker holds it). Leases of ``dead``
        holders (processes known to be gone) are taken over without waiting for expiry."""
        claims = self.claim_many(
            connection, scope, [key], holder=holder, now=now, seconds=seconds, dead=dead
        )
        return claims.get(key)

    def claim_many(
        self,
        connection: str,
        scope: str,
        keys: Sequence[str],
        *,
        holder: str,
        now: datetime,
        seconds: float,
        dead: Sequence[str] = (),
    ) -> dict[str, Claim]:
        """Lease each of ``keys`` that is free (one transaction; keys taken in one order for
        every claimer, so no lock cycles): the claims got, by key."""
        with self._db.session() as s:
            return _take_all(
                s, connection, scope, keys, holder=holder, now=now, seconds=seconds, dead=dead
            )

    def claim_push(
        self,
        connection: str,
        *,
        holder: str,
        now: datetime,
        seconds: float,
        limit: int,
        patient_id: str | None = None,
        dead: Sequence[str] = (),
    ) -> list[Claim]:
        """Lease up to ``limit`` patients with due outbox work that nobody else holds
        (leases of ``dead`` holders do not count)."""
        with self._db.session() as s:
            found = due_patients(
                s,
                connection=connection,
                now=now,
                limit=limit,
                postgres=self._db.postgres,
                patient_id=patient_id,
                dead=dead,
            )
            taken = _take_all(
                s, connection, "push", found, holder=holder, now=now, seconds=seconds, dead=dead
            )
            return list(taken.values())

    def holders(self) -> list[str]:
        """Every process holding a lease now or lately (expired leases included)."""
        with self._db.session() as s:
            return list(s.scalars(select(LeaseRow.holder).distinct()))

    def renew(self, claims: Sequence[Claim], now: datetime, seconds: float) -> list[Claim]:
        """Extend the claims still held; those missing from the answer are lost."""
        with self._db.session() as s:
            return renew(s, claims, now, seconds)

    def release(self, claim: Claim) -> None:
        self.release_all([claim])

    def release_all(self, claims: Sequence[Claim]) -> None:
        """Give the claims back (one transaction)."""
        if not claims:
            return
        with self._db.session() as s:
            s.execute(delete(LeaseRow).where(LeaseRow.token.in_([c.token for c in claims])))

    def holds(self, claim: Claim, now: datetime) -> bool:
        with self._db.session() as s:
            try:
                check(s, claim, now, postgres=False)
            except LeaseLost:
                return False
            return True

    def current(self, connection: str | None = None) -> list[Lease]:
        """The leases on record (of one connection), by holder, scope and key."""
        with self._db.session() as s:
            query = select(LeaseRow).order_by(LeaseRow.holder, LeaseRow.scope, LeaseRow.key)
            if connection is not None:
                query = query.where(LeaseRow.connection == connection)
            return [
                Lease(r.connection, r.scope, r.key, r.holder, utc(r.expires_at))
                for r in s.scalars(query)
            ]


_CHUNK = 200  # keys per statement: well under SQLite's and PostgreSQL's parameter limits


def _take_all(
    s: Session,
    connection: str,
    scope: str,
    keys: Sequence[str],
    *,
    holder: str,
    now: datetime,
    seconds: float,
    dead: Sequence[str],
) -> dict[str, Claim]:
    """Claim each of ``keys`` that is free, expired, or held by one of the ``dead`` holders
    (processes known to be gone), a chunk of keys at a time: the leases there taken over by
    one UPDATE, the missing ones added by one INSERT (a key another claimer adds first is
    not taken). Each claim has a token of its own. On PostgreSQL the chunk's rows are
    locked first in key order, the same for every claimer: no lock cycles."""
    wanted = sorted(set(keys))
    expires = now + timedelta(seconds=seconds)
    tokens = {key: secrets.token_hex(16) for key in wanted}
    postgres = s.get_bind().dialect.name == "postgresql"
    insert = pg_insert if postgres else sqlite_insert
    taken: set[str] = set()
    for at in range(0, len(wanted), _CHUNK):
        chunk = wanted[at : at + _CHUNK]
        ours = (LeaseRow.connection == connection, LeaseRow.scope == scope, LeaseRow.key.in_(chunk))
        if postgres:
            s.execute(select(LeaseRow.key).where(*ours).order_by(LeaseRow.key).with_for_update())
        over = s.scalars(
            update(LeaseRow)
            .where(*ours, (LeaseRow.expires_at <= now) | LeaseRow.holder.in_(list(dead)))
            .values(
                holder=holder,
                token=case({k: tokens[k] for k in chunk}, value=LeaseRow.key),
                acquired_at=now,
                expires_at=expires,
            )
            .returning(LeaseRow.key)
        )
        taken.update(over)
        rest = [k for k in chunk if k not in taken]
        if rest:
            added = s.scalars(
                insert(LeaseRow)
                .values(
                    [
                        {
                            "connection": connection,
                            "scope": scope,
                            "key": k,
                            "holder": holder,
                            "token": tokens[k],
                            "acquired_at": now,
                            "expires_at": expires,
                        }
                        for k in rest
                    ]
                )
                .on_conflict_do_nothing()
                .returning(LeaseRow.key)
            )
            taken.update(added)
    return {
        k: Claim(connection, scope, k, holder, tokens[k], expires) for k in wanted if k in taken
    }


def due_patients(
    s: Session,
    *,
    connection: str,
    now: datetime,
    limit: int,
    postgres: bool,
    patient_id: str | None = None,
    dead: Sequence[str] = (),
) -> list[str]:
    """Patients with due outbox work that no live lease covers (oldest work first).

    On PostgreSQL the outbox rows read are locked ``FOR UPDATE SKIP LOCKED`` for the rest of
    the claiming transaction, so concurrent claimers look at different work.
    """
    leased = select(LeaseRow.key).where(
        LeaseRow.connection == connection,
        LeaseRow.scope == "push",
        LeaseRow.expires_at > now,
        LeaseRow.holder.not_in(list(dead)),
    )
    query = (
        select(OutboxRow.patient_id, OutboxRow.record_id)
        .where(
            OutboxRow.connection == connection,
            OutboxRow.status == OutboxStatus.pending,
            OutboxRow.next_attempt_at <= now,
            OutboxRow.patient_id.not_in(leased),
        )
        .order_by(OutboxRow.id)
        .limit(limit * 20)
    )
    if patient_id is not None:
        query = query.where(OutboxRow.patient_id == patient_id)
    if postgres:
        query = query.with_for_update(skip_locked=True, of=OutboxRow)
    found: list[str] = []
    for pid, record_id in s.execute(query):
        key = pid or record_id
        if key not in found:
            found.append(key)
            if len(found) >= limit:
                break
    return found


def fence(s: Session, lease: Claim | None, now: datetime, *, postgres: bool) -> None:
    """With ``lease``, :func:`check` it in the transaction of the work it guards."""
    if lease is not None:
        check(s, lease, now, postgres=postgres)


def check(s: Session, claim: Claim, now: datetime, *, postgres: bool) -> None:
    """Raise :class:`LeaseLost` unless ``claim`` still holds its lease, unexpired.

    On PostgreSQL the lease row stays locked until the caller's transaction ends, so nobody
    takes the lease over between this check and the commit of what it guards.
    """
    query = select(LeaseRow.token, LeaseRow.expires_at).where(
        LeaseRow.connection == claim.connection,
        LeaseRow.scope == claim.scope,
        LeaseRow.key == claim.key,
    )
    if postgres:
        query = query.with_for_update()
    row = s.execute(query).first()
    if row is None or row.token != claim.token or utc(row.expires_at) <= now:
        raise LeaseLost(claim.connection, claim.scope, claim.key)


def renew(s: Session, claims: Sequence[Claim], now: datetime, seconds: float) -> list[Claim]:
    """Extend the claims still held (token matches, not expired); the others are lost."""
    if not claims:
        return []
    expires = now + timedelta(seconds=seconds)
    query = select(LeaseRow.token).where(
        LeaseRow.token.in_([c.token for c in claims]), LeaseRow.expires_at > now
    )
    if s.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    kept = set(s.scalars(query))
    if kept:
        s.execute(update(LeaseRow).where(LeaseRow.token.in_(kept)).values(expires_at=expires))
    return [
        Claim(c.connection, c.scope, c.key, c.holder, c.token, expires)
        for c in claims
        if c.token in kept
    ]
