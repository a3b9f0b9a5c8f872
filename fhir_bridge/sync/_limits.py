"""What one connection's server takes: its CapabilityStatement, corrected by what it refused.

A server may declare a transaction, a batch or a type's writes and still refuse them (405,
501, 403, or 400 saying "not supported"). Push then falls back (transaction, batch, single
requests) or stops sending the type, and remembers it in the store (``store.refusals``), so
later runs start in the working mode and send nothing to a refused endpoint. The memory is
forgotten when the CapabilityStatement changes (its fingerprint), after ``memory`` (the
connection's ``remember_refusals_hours``), and by ``fhir-bridge capabilities --forget``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from fhir_bridge.store import Refusal, Store

from ._plan import LEVELS

log = logging.getLogger("fhir_bridge.sync")
BundleKind = Literal["transaction", "batch"]
Mode = Literal["transaction", "batch", "single"]
# the types push writes, in the order it sends them (the plan's dependency levels)
PUSHED_TYPES = tuple(LEVELS)
PUSHED_TYPES = (
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Patient",
    "Condition",
    "Goal",
    "MedicationStatement",
    "CareTeam",
    "ServiceRequest",
    "Task",
    "CarePlan",
    "DocumentReference",
)


class Statement(Protocol):
    """The questions push asks of a CapabilityStatement (``fhir.ServerCapabilities``)."""

    def supports_transaction(self) -> bool: ...
    def supports_batch(self) -> bool: ...
    def writable(self, resource_type: str) -> bool: ...
    def supports_conditional_update(self, resource_type: str) -> bool: ...
    def supports_conditional_create(self, resource_type: str) -> bool: ...


def write_refusal(resource_type: str) -> str:
    return f"{resource_type}:write"


def delete_refusal(resource_type: str) -> str:
    return f"{resource_type}:delete"


def conditional_refusal(resource_type: str) -> str:
    return f"{resource_type}:conditional-update"


def describe_declared(resource_type: str) -> str:
    return (
        f"{resource_type} is read-only on this server: its CapabilityStatement declares "
        "neither create nor update (not attempted)"
    )


def describe(refusal: Refusal) -> str:
    """Why something is not sent, in words (the outbox entry's reason, ``status``)."""
    subject = refusal.resource_type
    if refusal.source != "run-time":
        return describe_declared(subject or refusal.what)
    when = f"with HTTP {refusal.status} on {refusal.refused_at.date().isoformat()}"
    if refusal.interaction.startswith("search-"):
        return (
            f"{subject} searches by {refusal.interaction.removeprefix('search-')} refused by "
            f"the server {when} (changes are found per patient)"
        )
    if refusal.interaction == "conditional-update":
        return (
            f"{subject} conditional updates refused by the server {when} "
            "(searched by identifier, then written)"
        )
    if refusal.interaction == "delete":
        return f"{subject} deletions refused by the server {when} (not attempted since)"
    what = f"{subject} writes" if subject else f"{refusal.what} Bundles"
    return (
        f"{what} refused by the server with HTTP {refusal.status} "
        f"on {refusal.refused_at.date().isoformat()} (not attempted since)"
    )


class Limits:
    """The statement's answers, minus what the server refused (remembered per connection).

    Without a store (a bare ``Sender`` in tests) refusals are kept for the run only.
    """

    def __init__(
        self,
        statement: Statement,
        refusals: Iterable[Refusal] = (),
        *,
        store: Store | None = None,
        connection: str = "",
        fingerprint: str = "",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.statement = statement
        self.refusals = {r.what: r for r in refusals}
        self.store = store
        self.connection = connection
        self.fingerprint = fingerprint
        self.clock = clock

    # ------------------------------------------------------------------ questions

    def __getattr__(self, name: str) -> Any:
        """Any other question (``can``, ``supports_operation``, ...) goes to the statement."""
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.statement, name)

    def supports_transaction(self) -> bool:
        return self.statement.supports_transaction() and "transaction" not in self.refusals

    def supports_batch(self) -> bool:
        return self.statement.supports_batch() and "batch" not in self.refusals

    def writable(self, resource_type: str) -> bool:
        return (
            self.statement.writable(resource_type)
            and write_refusal(resource_type) not in self.refusals
        )

    def updatable(self, resource_type: str) -> bool:
        """Whether resources of this type can be updated by id (a deletion's
        entered-in-error)."""
        can = getattr(self.statement, "can", None)
        declared = can(resource_type, "update") if callable(can) else True
        return bool(declared) and self.writable(resource_type)

    def deletable(self, resource_type: str) -> bool:
        """Whether the server takes ``DELETE`` of this type (declared, not refused)."""
        can = getattr(self.statement, "can", None)
        return (
            callable(can)
            and bool(can(resource_type, "delete"))
            and delete_refusal(resource_type) not in self.refusals
        )

    def why_not_deletable(self, resource_type: str) -> str:
        """Why a deletion of this type cannot reach the server (the entry's reason)."""
        refusal = self.refusals.get(delete_refusal(resource_type))
        if refusal is not None:
            when = refusal.refused_at.date().isoformat()
            how = f"DELETE refused by the server with HTTP {refusal.status} on {when}"
        else:
            how = "its CapabilityStatement declares no delete"
        return (
            f"{resource_type} deletion blocked: no entered-in-error update is possible "
            f"and {how} (not attempted since)"
        )

    def supports_conditional_update(self, resource_type: str) -> bool:
        return (
            self.statement.supports_conditional_update(resource_type)
            and conditional_refusal(resource_type) not in self.refusals
        )

    def supports_conditional_create(self, resource_type: str) -> bool:
        return self.statement.supports_conditional_create(resource_type)

    def takes(self, blocked_on: str) -> bool:
        """Whether what an entry waits on is taken now: a type's writes, or (``<Type>:delete``)
        a deletion of that type."""
        if blocked_on.endswith(":delete"):
            return self.deletable(blocked_on.removesuffix(":delete"))
        return self.writable(blocked_on)

    def mode(self) -> Mode:
        """Transaction when declared and not refused, else batch, else single requests."""
        if self.supports_transaction():
            return "transaction"
        return "batch" if self.supports_batch() else "single"

    def why_not_writable(self, resource_type: str) -> str:
        """Why the type's resources are not sent (for the outbox entry and ``status``)."""
        refusal = self.refusals.get(write_refusal(resource_type))
        if refusal is not None:
            return describe(refusal)
        return describe_declared(resource_type)

    # ------------------------------------------------------------------ learning

    def refused(self, what: str, status: int | None, said: str | None) -> None:
        """The server refused ``what`` (a Bundle kind, or ``<Type>:write``): remember it."""
        if what in self.refusals:
            return
        now = self.clock() if self.clock is not None else None
        if self.store is not None and now is not None:
            refusal = self.store.refusals.remember(
                self.connection,
                what,
                source="run-time",
                statement=self.fingerprint,
                now=now,
                status=status,
                said=said,
            )
        else:
            refusal = Refusal(
                self.connection,
                what,
                "run-time",
                status,
                None,
                self.fingerprint,
                now or datetime.now(UTC),
            )
        self.refusals[what] = refusal
        log.warning(
            "server refused %s: remembered, not attempted again",
            what,
            extra={"action": "push.refused", "connection": self.connection, "status": status},
        )


def load_limits(
    store: Store,
    connection: str,
    statement: Statement,
    fingerprint: str,
    now: datetime,
    *,
    clock: Callable[[], datetime],
    memory: timedelta | None = None,
    write: bool = True,
) -> Limits:
    """The connection's limits as of ``now``: stale memory forgotten, what the statement rules
    out noted (for ``status``), entries blocked on a type the server takes again unblocked.
    ``write`` False (a dry run) reads only."""
    if write:
        store.refusals.forget_stale(connection, fingerprint, now - memory if memory else None)
        declared = [write_refusal(t) for t in PUSHED_TYPES if not statement.writable(t)]
        store.refusals.remember_declared(connection, declared, fingerprint, now)
    remembered = [r for r in store.refusals.of(connection) if write or r.statement == fingerprint]
    limits = Limits(
        statement,
        remembered,
        store=store if write else None,
        connection=connection,
        fingerprint=fingerprint,
        clock=clock,
    )
    if write:
        waiting = store.outbox.blocked(connection).get(connection, {})
        store.outbox.unblock(connection, [t for t in waiting if limits.takes(t)], now)
    return limits
