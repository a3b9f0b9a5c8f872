"""The panel mapped once, for the contenders that are handed ready FHIR resources.

The peers and the ceiling get the bridge's own renderings (mapping is not charged to them),
grouped per patient in dependency order, with the directory resources (practitioners and
organisations shared across the panel) apart, since they must exist before anything that
references them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_bridge.mappers import Entry, MappingContext, directory_entries, resources_of
from fhir_bridge.sync._plan import LEVELS, identifier_of

from .panel import Panel

Json = dict[str, Any]


@dataclass(frozen=True)
class Prepared:
    directory: list[Entry]
    patients: list[list[Entry]]

    @property
    def resources(self) -> int:
        return len(self.directory) + sum(len(p) for p in self.patients)


def _ordered(entries: list[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: LEVELS.get(str(e.resource["resourceType"]), 9))


def prepare(panel: Panel, ctx: MappingContext) -> Prepared:
    directory: dict[str, Entry] = {}
    patients = []
    for package in panel.packages:
        records = package.records()
        patients.append(_ordered([e for r in records for e in resources_of(ctx, r)]))
        for entry in directory_entries(ctx, records):
            directory.setdefault(entry.full_url, entry)
    return Prepared(_ordered(list(directory.values())), patients)


def conditional_url(entry: Entry) -> str:
    """``Type?identifier=system|value``: how a resource is named before its id is known."""
    return f"{entry.resource['resourceType']}?identifier={identifier_of(entry.resource)}"
