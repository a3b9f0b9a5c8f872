"""Signed-in dashboard sessions, kept in the service's memory.

The browser holds only a random token (an HttpOnly, SameSite=Strict cookie); the API key it
stands for stays here, and its scopes are read from the store on every request, so a revoked
key stops working at once. Sessions end after ``lifetime`` seconds, on sign-out, or when the
service restarts.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable

COOKIE = "fhir_bridge_dashboard"
LIFETIME = 8 * 3600.0
MOST = 1000  # sessions kept at once; the oldest goes first


class DashboardSessions:
    def __init__(
        self,
        lifetime: float = LIFETIME,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lifetime = lifetime
        self.clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[float, str]] = {}  # token -> (expires, API key)

    def open(self, key: str) -> str:
        """A new session for ``key``; returns the token for the cookie."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = self.clock()
            for old in [t for t, (expires, _) in self._keys.items() if expires <= now]:
                del self._keys[old]
            while len(self._keys) >= MOST:
                del self._keys[next(iter(self._keys))]
            self._keys[token] = (now + self.lifetime, key)
        return token

    def key_of(self, token: str | None) -> str | None:
        """The API key of a live session, None for a missing, unknown or expired token."""
        if not token:
            return None
        with self._lock:
            found = self._keys.get(token)
            if found is None:
                return None
            if found[0] <= self.clock():
                del self._keys[token]
                return None
            return found[1]

    def close(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._keys.pop(token, None)
