"""A referral's tracking, merged when the performer's Task changed on its server (pure).

The organisation that fulfils a referral moves its Task along (accepted, rejected with a
reason, in progress, completed with outputs, cancelled) and may add notes and outputs; the
care manager may change the tracking too (a cancel, say). The rule: each tracking element
(status, reason, business status, outputs, owner, notes, authored on) is compared with the
Task **as last synced** (the server copy kept in the link), both sides seen through the same
FHIR reading. Changed on one side only: that side's value. Changed on both sides to
different values: a conflict, settled by the connection's ``conflict_policy`` (``manual``
keeps the local value and stores the conflict for a person). ``last_modified`` takes the later
of the two. Nothing is overwritten unseen: a local cancel racing the organisation's
in-progress is a conflict, not a silent replacement.
"""

from __future__ import annotations

from typing import Any

from ._merge import FieldConflict, Merge, Policy, three_way

Json = dict[str, Any]
TRACKED = ("status", "reason", "business_status", "outputs", "owner", "notes", "authored_on")


def merge_tracking(
    base: Json | None, seen_local: Json, local: Json, remote: Json, policy: Policy
) -> Merge:
    """``base``, ``seen_local`` and ``remote`` are trackings read from Tasks (the last synced
    one, ours rendered, the server's now); ``local`` is ours as stored. The merged tracking
    keeps ``local``'s values except where the remote side wins; field names in the result
    are ``tracking.<element>``."""

    def only(t: Json | None) -> Json:
        return {k: v for k, v in (t or {}).items() if k in TRACKED and v not in (None, [])}

    result = three_way(
        only(base) if base is not None else only(seen_local),
        only(seen_local),
        only(remote),
        policy,
    )
    merged = dict(local)
    taken = set(result.changed_remotely)
    if policy == "ehr-wins":
        taken |= {c.field for c in result.overruled}
    for name in taken:
        if remote.get(name) in (None, []):
            merged.pop(name, None)
        else:
            merged[name] = remote[name]
    stamps = [t for t in (local.get("last_modified"), remote.get("last_modified")) if t]
    if stamps:
        merged["last_modified"] = max(stamps)
    out = Merge(merged)
    out.changed_remotely = [f"tracking.{n}" for n in result.changed_remotely]
    out.changed_locally = [f"tracking.{n}" for n in result.changed_locally]
    out.conflicts = [_named(c) for c in result.conflicts]
    out.overruled = [_named(c) for c in result.overruled]
    return out


def _named(conflict: FieldConflict) -> FieldConflict:
    return FieldConflict(
        f"tracking.{conflict.field}", conflict.base, conflict.local, conflict.remote
    )
