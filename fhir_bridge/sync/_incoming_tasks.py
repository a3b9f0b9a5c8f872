"""Pull, a referral's Task: the performer's tracking merged into the referral.

A Task the organisation fulfilling a referral changed on the server carries the referral's
tracking (status, outputs, notes); it is merged three ways into the referral's tracking
(``_tracking``: against the Task as last synced, and the Task as we render it), keeping what
the organisation added that the model has no field for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from fhir_bridge import model as m
from fhir_bridge.errors import MappingError
from fhir_bridge.mappers import resources_of
from fhir_bridge.store import Link, NewConflict

from ._server_links import LinkLookup
from ._summary import PullSummary
from ._tracking import merge_tracking

if TYPE_CHECKING:
    from ._incoming import Incoming, Page

Json = dict[str, Any]


def take_task(
    incoming: Incoming,
    resource: Json,
    task: m.ReferralTask,
    referral: m.Referral,
    *,
    link: Link | None,
    by_server: LinkLookup,
    page: Page,
    summary: PullSummary,
) -> None:
    """The performer's Task changed on the server: merge its tracking into the referral
    (``_tracking``: against the Task as last synced), keeping what the organisation added
    (notes, outputs, elements the model has no field for)."""
    remote_t = task.tracking.model_dump(mode="json", exclude_none=True)
    local_t = (
        referral.tracking.model_dump(mode="json", exclude_none=True) if referral.tracking else {}
    )
    base_t = _tracking_of(incoming, link.server_json if link else None, by_server)
    rendered = next(
        (
            e.resource
            for e in resources_of(incoming.ctx, referral)
            if e.resource["resourceType"] == "Task"
        ),
        None,
    )
    seen_local = _tracking_of(incoming, rendered, by_server) or {}
    result = merge_tracking(base_t, seen_local, local_t, remote_t, incoming.policy)
    extras = dict(referral.fhir_extras)
    if task.fhir_extras.get("Task"):
        extras["Task"] = task.fhir_extras["Task"]
    else:
        extras.pop("Task", None)
    try:
        record = referral.model_copy(
            update={"tracking": m.Tracking.model_validate(result.merged), "fhir_extras": extras}
        )
        theirs = referral.model_copy(update={"tracking": task.tracking, "fhir_extras": extras})
    except ValidationError as exc:
        summary.failed += 1
        summary.problems.append(f"referral/{referral.id}: merge result invalid: {exc}")
        return
    changed = record != referral
    if changed or result.conflicts:
        summary.updated += 1
    else:
        summary.unchanged += 1
    for decided in result.overruled:
        incoming.log_decision("referral", referral.id, decided.field)
    local_data = referral.model_dump(mode="json", exclude_none=True)
    if result.conflicts:
        summary.conflicts += 1
        base_data = dict(local_data)
        if base_t is not None:
            base_data["tracking"] = base_t
        page.conflicts.append(
            NewConflict(
                kind="referral",
                record_id=referral.id,
                fields=[c.field for c in result.conflicts],
                base=base_data,
                local=local_data,
                remote=theirs.model_dump(mode="json", exclude_none=True),
            )
        )
    push_back = bool(result.changed_locally) or (
        incoming.policy == "local-wins" and bool(result.overruled)
    )
    page.records.append((record, push_back))
    # the link remembers what the server holds: a local value not on the server yet (a
    # local change, or one kept by a conflict) is then written by the next push
    held_back = push_back or bool(result.conflicts) or bool(result.overruled)
    page.links.append(incoming.link_of(resource, theirs if held_back else record, link))


def _tracking_of(incoming: Incoming, task: Json | None, by_server: LinkLookup) -> Json | None:
    """The tracking a Task holds, read as pull reads any Task (None if unreadable)."""
    if task is None:
        return None
    try:
        record = incoming.read_back(task, by_server)
    except (MappingError, ValueError):
        return None
    tracking = getattr(record, "tracking", None)
    if not isinstance(tracking, m.Tracking):
        return None
    return tracking.model_dump(mode="json", exclude_none=True)
