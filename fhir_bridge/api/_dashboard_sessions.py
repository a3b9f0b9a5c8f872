"""Signed-in dashboard sessions, kept in the service's memory.

The browser holds only a random token (an HttpOnly, SameSite=Strict cookie); the API key it
stands for stays here, and its scopes are read from the store on every request, so a revoked
key stops working at once. Sessions end after ``lifetime`` seconds, on sign-out, or when the
service restarts. Each session has its own CSRF token, which every form of the page carries
and every POST must send back.

Failed sign-ins are counted per client address (:class:`SignInLimit`) in memory too: the count
needs no durability (it only slows guessing down), must cost no database write per attempt
(so a flood cannot fill or lock the store), and restarts reset it along with the sessions.
With several service processes each counts its own, so the limit per address is per process.
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
        self._keys: dict[str, tuple[float, str, str]] = {}  # token -> (expires, key, csrf)

    def open(self, key: str) -> str:
        """A new session for ``key``; returns the token for the cookie."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = self.clock()
            for old in [t for t, (expires, *_) in self._keys.items() if expires <= now]:
                del self._keys[old]
            while len(self._keys) >= MOST:
                del self._keys[next(iter(self._keys))]
            self._keys[token] = (now + self.lifetime, key, secrets.token_urlsafe(32))
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

    def csrf_of(self, token: str | None) -> str | None:
        """The CSRF token of a live session (None when there is none)."""
        if self.key_of(token) is None:
            return None
        with self._lock:
            found = self._keys.get(token or "")
            return None if found is None else found[2]

    def close(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._keys.pop(token, None)


class SignInLimit:
    """At most ``failures`` failed sign-ins per client address within ``window`` seconds."""

    def __init__(
        self,
        failures: int = 5,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._failed: dict[str, list[float]] = {}  # address -> times of recent failures

    def wait(self, address: str) -> int | None:
        """Seconds ``address`` must wait before trying again; None when it may try now."""
        with self._lock:
            recent = self._recent(address)
            if recent:
                self._failed[address] = recent
            if len(recent) < self.failures:
                return None
            return max(1, int(recent[0] + self.window - self.clock() + 0.999))

    def failed(self, address: str) -> None:
        with self._lock:
            recent = self._recent(address)
            recent.append(self.clock())
            self._failed[address] = recent
            while len(self._failed) > MOST * 10:  # forget the longest-quiet addresses first
                del self._failed[next(iter(self._failed))]

    def _recent(self, address: str) -> list[float]:
        since = self.clock() - self.window
        return [t for t in self._failed.pop(address, []) if t > since]
