"""How emitted resources are named: identifier systems and deterministic fullUrls."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

DEFAULT_NAMESPACE = "https://fhir-bridge.example/id"


@dataclass(frozen=True, slots=True)
class MappingContext:
    """Settings of one mapping run, always given by the caller (mappers read no environment
    and no clock).

    ``namespace`` prefixes the identifier system of every emitted resource:
    ``<namespace>/<kind>``. ``now`` stamps records imported without a ``meta.lastUpdated``
    and the Bundles emitted.
    """

    namespace: str
    now: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "namespace", self.namespace.rstrip("/"))

    def system(self, kind: str) -> str:
        return f"{self.namespace}/{kind}"

    def identifier(self, kind: str, record_id: str) -> dict[str, Any]:
        return {"system": self.system(kind), "value": record_id}

    def full_url(self, kind: str, record_id: str) -> str:
        return full_url_for(self.system(kind), record_id)

    def kind_of_system(self, system: str | None) -> str | None:
        """The record kind an identifier system of ours stands for, else None."""
        prefix = self.namespace + "/"
        if system and system.startswith(prefix):
            return system[len(prefix) :]
        return None


def full_url_for(system: str, value: str) -> str:
    """``urn:uuid:`` of a resource, derived only from its identifier."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{system}|{value}')}"
