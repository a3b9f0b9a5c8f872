"""Field-level three-way merge of internal records (pure).

``base`` is the record as of the last successful sync with a connection, ``local`` the care
manager's current record, ``remote`` what the EHR holds now (read back into an internal
record). A field changed on one side only takes that side's value; a field changed on both
sides to different values is a conflict, settled by the connection's policy:
``local-wins``, ``ehr-wins``, or ``manual`` (kept for a person to decide; the local value
stays meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Json = dict[str, Any]
Policy = Literal["manual", "ehr-wins", "local-wins"]
# bookkeeping, not content: never merged field by field
_NOT_MERGED = frozenset({"id", "kind", "updated_at", "fhir_extras"})


@dataclass(frozen=True)
class FieldConflict:
    field: str
    base: Any
    local: Any
    remote: Any


@dataclass
class Merge:
    merged: Json
    changed_locally: list[str] = field(default_factory=list)
    changed_remotely: list[str] = field(default_factory=list)
    conflicts: list[FieldConflict] = field(default_factory=list)
    # what an automatic decision threw away, kept for the sync log
    overruled: list[FieldConflict] = field(default_factory=list)


def three_way(base: Json | None, local: Json, remote: Json, policy: Policy = "manual") -> Merge:
    """Merge ``local`` and ``remote`` against ``base`` (None: no common past, remote is new)."""
    if base is None:
        base = local
    merged = dict(local)
    result = Merge(merged)
    for name in sorted((set(base) | set(local) | set(remote)) - _NOT_MERGED):
        b, ours, theirs = base.get(name), local.get(name), remote.get(name)
        if ours == theirs:
            continue
        if ours == b:
            _set(merged, name, theirs)
            result.changed_remotely.append(name)
        elif theirs == b:
            result.changed_locally.append(name)
        else:
            conflict = FieldConflict(name, b, ours, theirs)
            if policy == "ehr-wins":
                _set(merged, name, theirs)
                result.overruled.append(conflict)
            elif policy == "local-wins":
                result.overruled.append(conflict)
            else:
                result.conflicts.append(conflict)
    merged["fhir_extras"] = remote.get("fhir_extras", local.get("fhir_extras", {}))
    return result


def _set(target: Json, name: str, value: Any) -> None:
    if value is None:
        target.pop(name, None)
    else:
        target[name] = value
