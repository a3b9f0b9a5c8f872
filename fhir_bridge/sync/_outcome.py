"""Push, outcomes: how each write ended, read from the server's answer.

A write ends written (the server's id and version), failed (the error, and the reason kept in
the outbox for the operator), or blocked (a type the server does not take: the entry waits).
The helpers here read a transaction/batch response entry, and judge a refusal of a whole
Bundle: "not this kind of request" (a mode the server does not run) or an entry's fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_bridge.errors import (
    BridgeError,
    NotSupportedByServer,
    VersionConflict,
)
from fhir_bridge.fhir import parse_outcome, status_error
from fhir_bridge.store import Link

from ._plan import Write

Json = dict[str, Any]
# a whole Bundle answered so: the server does not run it as such (not an entry's fault)
MODE_REFUSED = (403, 405, 501)
MISSING = "no entry for it in the server's response"


@dataclass(frozen=True)
class Failure:
    """Why a write did not happen: the error (its class and data decide whether to try
    again, see ``RetrySchedule``) and the reason kept in the outbox for the operator (it may
    quote the server's diagnostics: stored, never logged)."""

    error: BridgeError
    reason: str


@dataclass(frozen=True)
class Outcome:
    """How one write ended: ``failure`` None means the server holds it now."""

    write: Write
    status: int
    resource_id: str | None = None
    version_id: str | None = None
    last_updated: str | None = None
    resource: Json | None = None
    failure: Failure | None = None

    @property
    def conflict(self) -> bool:
        return self.status in (409, 412)

    @property
    def blocked(self) -> bool:
        """Not written because the server does not take the type: the entry waits."""
        return self.failure is not None and isinstance(self.failure.error, NotSupportedByServer)


def not_attempted(write: Write, reason: str) -> Outcome:
    """A write of a type the server does not take (declared or refused before): never sent."""
    interaction = "create" if write.link is None else "update"
    error = NotSupportedByServer(write.resource_type, interaction)
    return Outcome(write, 405, failure=Failure(error, reason))


TRACKING = ("status", "statusReason", "businessStatus", "output", "note", "owner")


def tracking_moved(before: Link | None, now: Link | None) -> bool:
    """Whether a Task's tracking elements differ between two server copies."""
    if before is None or now is None or before.server_json is None or now.server_json is None:
        return False
    return any(before.server_json.get(k) != now.server_json.get(k) for k in TRACKING)


def moved(write: Write) -> Outcome:
    """A Task write not resent: its tracking changed on the server since we last saw it."""
    reason = "the performer changed this Task since our last sync: pull decides first"
    error = VersionConflict(409, resource_type=write.resource_type)
    return Outcome(write, 409, failure=Failure(error, reason))


def edited_before_retraction(write: Write) -> Outcome:
    """A write to entered-in-error not resent: the EHR edited the resource since we last saw
    it, so pull merges that edit with the status change (a conflict where both changed one
    element) before the status goes again."""
    reason = "the EHR changed this resource since our last sync: pull decides first"
    error = VersionConflict(409, resource_type=write.resource_type)
    return Outcome(write, 409, failure=Failure(error, reason))


def failed(write: Write, exc: BridgeError) -> Outcome:
    status = getattr(exc, "status", None)
    return Outcome(
        write, status if isinstance(status, int) else 503, failure=Failure(exc, describe(exc))
    )


def read_entry(write: Write, result: Json) -> Outcome:
    """One transaction/batch response entry, read."""
    response = result.get("response") or {}
    status_text = str(response.get("status") or "")
    status = int(status_text.split(maxsplit=1)[0]) if status_text[:3].isdigit() else 502
    if status >= 300:
        outcome = response.get("outcome") or {}
        error = status_error(
            status,
            parse_outcome(outcome),
            None,
            method="",
            path="",
            resource_type=write.resource_type,
        )
        return Outcome(write, status, failure=Failure(error, f"HTTP {status}: {_said(outcome)}"))
    parts = str(response.get("location") or "").split("/")
    resource_id, version = None, None
    if "_history" in parts:
        at = parts.index("_history")
        resource_id = parts[at - 1]
        version = parts[at + 1] if at + 1 < len(parts) else None
    resource = result.get("resource") if isinstance(result.get("resource"), dict) else None
    if resource is not None:
        resource_id = resource_id or resource.get("id")
        version = version or (resource.get("meta") or {}).get("versionId")
    etag = str(response.get("etag") or "")
    if version is None and etag.startswith('W/"'):
        version = etag[3:-1]
    return Outcome(write, status, resource_id, version, response.get("lastModified"), resource)


def refuses_mode(exc: BridgeError) -> bool:
    """Whether a whole Bundle's refusal says "not this kind of request" (not an entry's
    fault): 403, 405 or 501, or 400 with an OperationOutcome saying it is not supported."""
    status = getattr(exc, "status", None)
    if status in MODE_REFUSED:
        return True
    if status != 400:
        return False
    issues = getattr(getattr(exc, "outcome", None), "issues", ())
    return any(
        i.code == "not-supported" or "not supported" in (i.diagnostics or "").lower()
        for i in issues
    )


def names_mode(exc: BridgeError, kind: str) -> bool:
    """Whether the server's words say the Bundle kind itself is refused."""
    said = (said_of(exc) or "").lower()
    return kind in said and any(w in said for w in ("not supported", "not allowed", "refused"))


def said_of(exc: BridgeError) -> str | None:
    issues = getattr(getattr(exc, "outcome", None), "issues", ())
    return "; ".join(i.diagnostics for i in issues if getattr(i, "diagnostics", None)) or None


def _said(outcome: Json) -> str:
    texts = [str(i.get("diagnostics") or i.get("code") or "") for i in outcome.get("issue") or []]
    return "; ".join(t for t in texts if t) or "no details"


def describe(exc: BridgeError) -> str:
    """What to keep in the outbox about a failure: the error and the server's own words.

    (Stored for the operator in the dead-letter view; never logged, as diagnostics can quote
    resource content.)
    """
    issues = getattr(getattr(exc, "outcome", None), "issues", ())
    said = "; ".join(i.diagnostics for i in issues if getattr(i, "diagnostics", None))
    return f"{type(exc).__name__}: {exc} - {said}" if said else f"{type(exc).__name__}: {exc}"
