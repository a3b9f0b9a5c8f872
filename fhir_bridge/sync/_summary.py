"""What a sync run reports."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from ._deletion_plan import PlannedDeletion
from ._plan import Write


def int_fields(summary: Any) -> dict[str, int]:
    """The counters of a summary dataclass, by name, in declaration order."""
    return {
        f.name: getattr(summary, f.name)
        for f in fields(summary)
        if isinstance(getattr(summary, f.name), int)
    }


@dataclass
class PushSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    dead_lettered: int = 0
    not_supported: int = 0
    busy: int = 0  # patients another worker was pushing: left to it
    lease_lost: int = 0  # patients given up because the lease was lost: redone by another
    held: int = 0  # patients not matched on the EHR (match mode): nothing written for them
    deleted: int = 0  # resources a local deletion reached: entered in error, or deleted
    conflicts: int = 0  # deletions that raced an EHR edit (``_deletions``)
    planned: list[Write] = field(default_factory=list)
    planned_deletions: list[PlannedDeletion] = field(default_factory=list)  # dry run only

    def counts(self) -> dict[str, int]:
        return int_fields(self)


@dataclass
class PullSummary:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    conflicts: int = 0
    deleted: int = 0
    skipped: int = 0
    failed: int = 0
    busy: int = 0  # resource types another worker was pulling: left to it
    transitions: int = 0  # transitional-care plans started by a discharge (``_discharges``)
    problems: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return int_fields(self)

    def add(self, other: PullSummary) -> None:
        """Count ``other``'s figures and problems in too (one type's, into the run's)."""
        for name, value in int_fields(other).items():
            setattr(self, name, getattr(self, name) + value)
        self.problems += other.problems
