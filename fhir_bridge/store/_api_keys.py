"""API keys of the HTTP service: only a SHA-256 of each key is kept.

A key works until it is revoked or its ``expires_at`` has passed. Several keys may share a
name (a rotation leaves one working key under it); ``revoke`` and ``rotate`` act on every
working key of a name.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import or_, select, update

from ._clock import utc
from ._database import Database
from ._tables import ApiKeyRow


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid key is: whose, and what it may do."""

    name: str
    scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as listed: never the key itself, nor its hash."""

    id: int
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked: bool

    def state(self, now: datetime) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


class ApiKeys:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(
        self,
        name: str,
        scopes: Sequence[str],
        now: datetime,
        *,
        expires_at: datetime | None = None,
    ) -> str:
        """A new key (shown once); only its hash is stored."""
        key = _new_key()
        with self._db.session() as s:
            s.add(
                ApiKeyRow(
                    name=name,
                    key_hash=_hash(key),
                    scopes=list(scopes),
                    created_at=now,
                    expires_at=expires_at,
                )
            )
        return key

    def check(self, key: str, now: datetime) -> Grant | None:
        """Whose a key is and its scopes; None for an unknown, revoked or expired one."""
        with self._db.session() as s:
            row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == _hash(key)))
            if row is None or row.revoked:
                return None
            if row.expires_at is not None and utc(row.expires_at) <= now:
                return None
            return Grant(row.name, tuple(row.scopes))

    def scopes(self, key: str, now: datetime | None = None) -> list[str] | None:
        """The scopes of a valid key, None for an unknown, revoked or expired one (``now``:
        the clock's)."""
        grant = self.check(key, now or datetime.now(UTC))
        return None if grant is None else list(grant.scopes)

    def list(self) -> list[ApiKey]:
        """Every key ever made, oldest first."""
        with self._db.session() as s:
            return [_key(r) for r in s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id))]

    def revoke(self, name: str, now: datetime | None = None) -> int:
        """Revoke every key of that name at once; how many there were."""
        with self._db.session() as s:
            result = s.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.name == name, ~ApiKeyRow.revoked)
                .values(revoked=True, revoked_at=now)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def rotate(
        self, name: str, now: datetime, *, expires_at: datetime | None = None
    ) -> tuple[str, tuple[str, ...]] | None:
        """Replace the working keys of ``name`` by one new key with their scopes (all of
        them), in one transaction; the new key and its scopes, None when ``name`` has no
        working key."""
        with self._db.session() as s:
            rows = list(
                s.scalars(
                    select(ApiKeyRow)
                    .where(
                        ApiKeyRow.name == name,
                        ~ApiKeyRow.revoked,
                        or_(ApiKeyRow.expires_at.is_(None), ApiKeyRow.expires_at > now),
                    )
                    .order_by(ApiKeyRow.id)
                )
            )
            if not rows:
                return None
            scopes = tuple(dict.fromkeys(scope for r in rows for scope in r.scopes))
            for row in rows:
                row.revoked = True
                row.revoked_at = now
            key = _new_key()
            s.add(
                ApiKeyRow(
                    name=name,
                    key_hash=_hash(key),
                    scopes=list(scopes),
                    created_at=now,
                    expires_at=expires_at,
                )
            )
            return key, scopes


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        row.id,
        row.name,
        tuple(row.scopes),
        utc(row.created_at),
        None if row.expires_at is None else utc(row.expires_at),
        None if row.revoked_at is None else utc(row.revoked_at),
        row.revoked,
    )


def _new_key() -> str:
    return "fbk_" + secrets.token_urlsafe(32)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
