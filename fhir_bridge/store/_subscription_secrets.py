"""Subscription secrets: one per Subscription on an EHR, only a SHA-256 of each is kept.

The secret travels in a header the EHR sends with every notification of that Subscription
(``fhir_bridge.sync`` issues and rotates them). A secret is 32 random bytes, so a plain
SHA-256 is enough to make the stored hash useless to a reader of the database; the webhook
compares hashes in constant time (``hmac.compare_digest``). Rotation keeps the older secret
valid for a short grace, for notifications already on their way.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update

from ._clock import utc
from ._database import Database
from ._tables import SubscriptionSecretRow

PREFIX = "fbs_"


@dataclass(frozen=True, slots=True)
class SubscriptionSecret:
    """A secret issued for one connection's Subscription of one resource type (no plain text)."""

    id: int
    connection: str
    resource_type: str
    endpoint: str
    subscription_id: str | None
    created_at: datetime
    expires_at: datetime | None


class SubscriptionSecrets:
    def __init__(self, db: Database) -> None:
        self._db = db

    def issue(
        self, connection: str, resource_type: str, endpoint: str, now: datetime
    ) -> tuple[int, str]:
        """A new secret (its plain text returned once, to be put in the Subscription)."""
        secret = PREFIX + secrets.token_urlsafe(32)
        with self._db.session() as s:
            row = SubscriptionSecretRow(
                connection=connection,
                resource_type=resource_type,
                endpoint=endpoint,
                secret_hash=_hash(secret),
                created_at=now,
            )
            s.add(row)
            s.flush()
            return row.id, secret

    def attach(self, secret_id: int, subscription_id: str) -> None:
        """The Subscription on the EHR that now carries the secret ``secret_id``."""
        with self._db.session() as s:
            s.execute(
                update(SubscriptionSecretRow)
                .where(SubscriptionSecretRow.id == secret_id)
                .values(subscription_id=subscription_id)
            )

    def discard(self, secret_id: int) -> None:
        """A secret never put on the EHR (the write failed)."""
        with self._db.session() as s:
            s.execute(delete(SubscriptionSecretRow).where(SubscriptionSecretRow.id == secret_id))

    def retire(self, keep: int, now: datetime, grace: timedelta) -> int:
        """Secrets of the same connection and type as ``keep`` stop being valid after ``grace``;
        secrets already expired are deleted. Returns how many were given an expiry."""
        with self._db.session() as s:
            kept = s.get(SubscriptionSecretRow, keep)
            if kept is None:
                return 0
            s.execute(
                delete(SubscriptionSecretRow).where(
                    SubscriptionSecretRow.expires_at.is_not(None),
                    SubscriptionSecretRow.expires_at <= now,
                )
            )
            result = s.execute(
                update(SubscriptionSecretRow)
                .where(
                    SubscriptionSecretRow.connection == kept.connection,
                    SubscriptionSecretRow.resource_type == kept.resource_type,
                    SubscriptionSecretRow.id != keep,
                    or_(
                        SubscriptionSecretRow.expires_at.is_(None),
                        SubscriptionSecretRow.expires_at > now + grace,
                    ),
                )
                .values(expires_at=now + grace)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def valid(self, connection: str, now: datetime) -> list[SubscriptionSecret]:
        """The connection's secrets still valid at ``now``, newest first per type."""
        with self._db.session() as s:
            rows = s.scalars(
                select(SubscriptionSecretRow)
                .where(SubscriptionSecretRow.connection == connection)
                .order_by(SubscriptionSecretRow.resource_type, SubscriptionSecretRow.id.desc())
            ).all()
            return [_secret(r) for r in rows if r.expires_at is None or utc(r.expires_at) > now]

    def current(self, connection: str, now: datetime) -> dict[str, SubscriptionSecret]:
        """Per resource type, the newest valid secret on a Subscription (what rotation renews)."""
        found: dict[str, SubscriptionSecret] = {}
        for secret in self.valid(connection, now):
            if secret.subscription_id is not None and secret.expires_at is None:
                found.setdefault(secret.resource_type, secret)
        return found

    def verify(
        self, connection: str, resource_type: str | None, secret: str, now: datetime
    ) -> bool:
        """Whether ``secret`` is a valid secret of the connection's Subscription of that type
        (of any type when None); every stored hash is compared, in constant time."""
        offered = _hash(secret)
        with self._db.session() as s:
            query = select(SubscriptionSecretRow.secret_hash, SubscriptionSecretRow.expires_at)
            query = query.where(SubscriptionSecretRow.connection == connection)
            if resource_type is not None:
                query = query.where(SubscriptionSecretRow.resource_type == resource_type)
            rows = s.execute(query).all()
        matched = False
        for stored, expires_at in rows:
            same = hmac.compare_digest(stored, offered)
            matched |= same and (expires_at is None or utc(expires_at) > now)
        return matched

    def forget(self, connection: str) -> int:
        """Every secret of the connection (its Subscriptions were deleted); how many."""
        with self._db.session() as s:
            result = s.execute(
                delete(SubscriptionSecretRow).where(SubscriptionSecretRow.connection == connection)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _secret(row: SubscriptionSecretRow) -> SubscriptionSecret:
    return SubscriptionSecret(
        row.id,
        row.connection,
        row.resource_type,
        row.endpoint,
        row.subscription_id,
        utc(row.created_at),
        None if row.expires_at is None else utc(row.expires_at),
    )
