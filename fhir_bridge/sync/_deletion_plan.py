"""Push, deletions: which resources a local deletion reaches, and how each would be sent.

Shared by the push (``_deletions``: it sends them) and its dry run (``plan``: the rows it
shows, nothing sent). Per resource the record left on the server, the referencing ones
first (a referral's Task before its ServiceRequest); the shared directory, and in match mode
the EHR's own Patient, are never ours to delete.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

from fhir_bridge.store import Link, OutboxEntry

from ._limits import Limits, delete_refusal
from ._plan import LEVELS
from ._retraction import has_status, is_entered_in_error

DIRECTORY_TYPES = frozenset({"Practitioner", "PractitionerRole", "Organization"})
Way = Literal["done", "entered-in-error", "delete", "blocked"]


@dataclass(frozen=True)
class PlannedDeletion:
    """One resource a queued local deletion would reach (a dry run's row)."""

    action: Literal["entered-in-error", "delete", "blocked", "disputed"]
    resource_type: str
    identifier: str  # "system|value"
    record: str  # "kind/id" of the deleted record
    reason: str = ""  # why it would wait: the server's refusal, or a conflict to resolve


def deletions(entries: Sequence[OutboxEntry]) -> list[OutboxEntry]:
    """The deletion entries of ``entries`` in the order they are sent: the Patient's own
    last (the patient's other resources reference it)."""
    return sorted((e for e in entries if e.deleting), key=lambda e: e.kind == "patient")


def reached(links: Sequence[Link], patient_mode: str) -> list[Link]:
    """The resources of one deleted record that its deletion reaches, referencing first."""
    return [
        link
        for link in sorted(links, key=lambda x: -LEVELS.get(x.resource_type, 9))
        if link.resource_type not in DIRECTORY_TYPES
        and not (link.resource_type == "Patient" and patient_mode == "match")
    ]


def way_of(link: Link, caps: Limits) -> Way:
    """How the deletion reaches one resource: ``done`` (entered in error already), a status
    update to entered-in-error, a DELETE, or ``blocked`` (the server takes neither)."""
    rtype = link.resource_type
    if link.server_json is not None and is_entered_in_error(link.server_json):
        return "done"
    seen = link.server_json or link.sent_json
    if has_status(rtype) and seen is not None and caps.updatable(rtype):
        return "entered-in-error"
    if caps.deletable(rtype):
        return "delete"
    return "blocked"


def blocked_on(rtype: str) -> str:
    """What a blocked deletion waits for: the type's update, where it has a status to set."""
    return rtype if has_status(rtype) else delete_refusal(rtype)


def plan(
    entries: Sequence[OutboxEntry],
    links: dict[tuple[str, str], list[Link]],
    caps: Limits,
    *,
    patient_mode: str,
    disputed: Collection[tuple[str, str]] = (),
) -> list[PlannedDeletion]:
    """What a push would do for the deletion entries ``entries``, in the order they are sent
    (:func:`deletions`), with their records' ``links`` on the connection; a record whose
    deletion is a conflict not resolved yet is one ``disputed`` row (a person decides first)."""
    rows = []
    for entry in entries:
        key = (entry.kind, entry.record_id)
        record = f"{entry.kind}/{entry.record_id}"
        if key in disputed:
            rows.append(PlannedDeletion("disputed", "", "", record, "a conflict to resolve first"))
            continue
        for link in reached(links.get(key, []), patient_mode):
            way = way_of(link, caps)
            if way == "done":
                continue
            reason = caps.why_not_deletable(link.resource_type) if way == "blocked" else ""
            rows.append(PlannedDeletion(way, link.resource_type, link.identifier, record, reason))
    return rows
