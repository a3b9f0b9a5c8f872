"""API keys of the HTTP service: only a SHA-256 of each key is kept."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update

from ._database import Database
from ._tables import ApiKeyRow


class ApiKeys:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, name: str, scopes: Sequence[str], now: datetime) -> str:
        """A new key (shown once); only its hash is stored."""
        key = "fbk_" + secrets.token_urlsafe(32)
        with self._db.session() as s:
            s.add(ApiKeyRow(name=name, key_hash=_hash(key), scopes=list(scopes), created_at=now))
        return key

    def scopes(self, key: str) -> list[str] | None:
        """The scopes of a valid key, None for an unknown or revoked one."""
        with self._db.session() as s:
            row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == _hash(key)))
            return None if row is None or row.revoked else list(row.scopes)

    def revoke(self, name: str) -> int:
        """Revoke every key of that name at once; how many there were."""
        with self._db.session() as s:
            result = s.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.name == name, ~ApiKeyRow.revoked)
                .values(revoked=True)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
