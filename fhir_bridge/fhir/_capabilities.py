"""What a server says it can do (its CapabilityStatement), and the choices that follow.

Real EHRs differ: Oracle Health declares CarePlan and Goal read/search only and batch without
transaction; Epic supports few ``_lastUpdated`` searches. What a statement does not declare is
treated as unsupported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from fhir_bridge.errors import MalformedResponse, NotSupportedByServer

TYPE_INTERACTIONS = frozenset(
    {
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "history-instance",
        "history-type",
        "create",
        "search-type",
    }
)
SYSTEM_INTERACTIONS = frozenset({"transaction", "batch", "search-system", "history-system"})
_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"

BundleMode = Literal["transaction", "batch", "single"]
Upsert = Literal["conditional-update", "search-then-write"]
ChangeDetection = Literal["_lastUpdated", "history", "search", "read"]


@dataclass(frozen=True, slots=True)
class ResourceCapabilities:
    """One ``rest.resource`` entry of a CapabilityStatement."""

    type: str
    interactions: frozenset[str] = frozenset()
    versioning: str = "no-version"
    conditional_create: bool = False
    conditional_update: bool = False
    conditional_delete: str = "not-supported"
    update_create: bool = False
    search_params: frozenset[str] = frozenset()
    operations: frozenset[str] = frozenset()  # names without the $, e.g. "match"

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ResourceCapabilities:
        return cls(
            type=str(raw.get("type") or ""),
            interactions=_codes(raw.get("interaction")),
            versioning=str(raw.get("versioning") or "no-version"),
            conditional_create=raw.get("conditionalCreate") is True,
            conditional_update=raw.get("conditionalUpdate") is True,
            conditional_delete=str(raw.get("conditionalDelete") or "not-supported"),
            update_create=raw.get("updateCreate") is True,
            search_params=_names(raw.get("searchParam")),
            operations=frozenset(n.lstrip("$") for n in _names(raw.get("operation"))),
        )


@dataclass(frozen=True)
class ServerCapabilities:
    """The server-mode ``rest`` part of a CapabilityStatement, as questions one can ask."""

    software_name: str | None = None
    software_version: str | None = None
    fhir_version: str | None = None
    resources: Mapping[str, ResourceCapabilities] = field(default_factory=dict)
    system_interactions: frozenset[str] = frozenset()
    common_search_params: frozenset[str] = frozenset()
    token_endpoint: str | None = None

    @classmethod
    def from_statement(cls, statement: Mapping[str, Any]) -> ServerCapabilities:
        """Read a CapabilityStatement (JSON); MalformedResponse if it is not one."""
        if not isinstance(statement, Mapping) or (
            statement.get("resourceType") != "CapabilityStatement"
        ):
            raise MalformedResponse("not a CapabilityStatement")
        software = statement.get("software") or {}
        rests = [r for r in statement.get("rest") or [] if isinstance(r, Mapping)]
        rest: Mapping[str, Any] = next(
            (r for r in rests if r.get("mode") == "server"), rests[0] if rests else {}
        )
        resources = {}
        for raw in rest.get("resource") or []:
            if isinstance(raw, Mapping) and raw.get("type"):
                res = ResourceCapabilities.from_json(raw)
                resources[res.type] = res
        return cls(
            software_name=_str(software.get("name")),
            software_version=_str(software.get("version")),
            fhir_version=_str(statement.get("fhirVersion")),
            resources=resources,
            system_interactions=_codes(rest.get("interaction")),
            common_search_params=_names(rest.get("searchParam")),
            token_endpoint=_token_endpoint(rest.get("security")),
        )

    def resource(self, resource_type: str) -> ResourceCapabilities | None:
        return self.resources.get(resource_type)

    def fingerprint(self) -> str:
        """A hash of what the statement declares (software, interactions, conditional
        operations, versioning, search parameters): equal for two statements that decide
        the same, different when the server's declared abilities change."""
        declared = {
            "software": [self.software_name, self.software_version, self.fhir_version],
            "system": sorted(self.system_interactions),
            "common": sorted(self.common_search_params),
            "resources": {
                name: [
                    sorted(r.interactions),
                    r.versioning,
                    r.conditional_create,
                    r.conditional_update,
                    r.conditional_delete,
                    r.update_create,
                    sorted(r.search_params),
                ]
                for name, r in sorted(self.resources.items())
            },
        }
        text = json.dumps(declared, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def can(self, resource_type: str | None, interaction: str) -> bool:
        """Whether the statement declares ``interaction`` (type-level, or system-level if
        ``resource_type`` is None)."""
        if resource_type is None:
            return interaction in self.system_interactions
        res = self.resources.get(resource_type)
        return res is not None and interaction in res.interactions

    def require(self, resource_type: str | None, interaction: str) -> None:
        """Raise :class:`NotSupportedByServer` unless the server declares ``interaction``."""
        if not self.can(resource_type, interaction):
            raise NotSupportedByServer(resource_type, interaction)

    def writable(self, resource_type: str) -> bool:
        """Whether resources of this type can be created or updated at all."""
        return self.can(resource_type, "create") or self.can(resource_type, "update")

    def supports_transaction(self) -> bool:
        return "transaction" in self.system_interactions

    def supports_batch(self) -> bool:
        return "batch" in self.system_interactions

    def supports_conditional_create(self, resource_type: str) -> bool:
        res = self.resources.get(resource_type)
        return res is not None and res.conditional_create and "create" in res.interactions

    def supports_conditional_update(self, resource_type: str) -> bool:
        res = self.resources.get(resource_type)
        return res is not None and res.conditional_update and "update" in res.interactions

    def supports_if_match(self, resource_type: str) -> bool:
        """``versioning = versioned-update``: the server checks (and may demand) If-Match."""
        res = self.resources.get(resource_type)
        return res is not None and res.versioning == "versioned-update"

    def supports_search_param(self, resource_type: str, name: str) -> bool:
        res = self.resources.get(resource_type)
        if res is None or "search-type" not in res.interactions:
            return False
        return name in res.search_params or name in self.common_search_params

    def supports_operation(self, resource_type: str, name: str) -> bool:
        """Whether the statement declares the type-level operation ``name`` (``match`` or
        ``$match``) for ``resource_type``."""
        res = self.resources.get(resource_type)
        return res is not None and name.lstrip("$") in res.operations

    def supports_last_updated(self, resource_type: str) -> bool:
        """Whether ``Type?_lastUpdated=gt...`` is declared (not listed means unsupported)."""
        return self.supports_search_param(resource_type, "_lastUpdated")


@dataclass(frozen=True, slots=True)
class WriteStrategy:
    """How to write one resource type to one server.

    - ``writable``: False when the server declares neither create nor update (then the other
      fields say nothing; send the change through a channel that is writable).
    - ``bundle``: ``transaction`` when declared, else ``batch``, else ``single`` requests.
    - ``upsert``: ``conditional-update`` (``PUT Type?identifier=...``) when declared, else
      ``search-then-write`` (search by identifier, then ``PUT Type/id`` or ``POST``).
    - ``if_match``: send ``If-Match`` with the last version seen (``versioned-update``).
    """

    resource_type: str
    writable: bool
    bundle: BundleMode = "single"
    upsert: Upsert = "search-then-write"
    if_match: bool = False


def write_strategy(capabilities: ServerCapabilities, resource_type: str) -> WriteStrategy:
    """Decide, from the CapabilityStatement alone, how to write ``resource_type``."""
    if not capabilities.writable(resource_type):
        return WriteStrategy(resource_type, writable=False)
    bundle: BundleMode = (
        "transaction"
        if capabilities.supports_transaction()
        else "batch"
        if capabilities.supports_batch()
        else "single"
    )
    upsert: Upsert = (
        "conditional-update"
        if capabilities.supports_conditional_update(resource_type)
        else "search-then-write"
    )
    return WriteStrategy(
        resource_type,
        writable=True,
        bundle=bundle,
        upsert=upsert,
        if_match=capabilities.supports_if_match(resource_type),
    )


def change_detection(capabilities: ServerCapabilities, resource_type: str) -> ChangeDetection:
    """How to find what changed on the server since the last pull.

    ``_lastUpdated`` search when declared; else type history with ``_since``; else a plain
    search compared against what we hold (``search``); else re-reading known ids (``read``).
    """
    if capabilities.supports_last_updated(resource_type):
        return "_lastUpdated"
    if capabilities.can(resource_type, "history-type"):
        return "history"
    if capabilities.can(resource_type, "search-type"):
        return "search"
    return "read"


def _codes(items: Any) -> frozenset[str]:
    return frozenset(
        str(i["code"]) for i in items or [] if isinstance(i, Mapping) and i.get("code")
    )


def _names(items: Any) -> frozenset[str]:
    return frozenset(
        str(i["name"]) for i in items or [] if isinstance(i, Mapping) and i.get("name")
    )


def _str(value: Any) -> str | None:
    return str(value) if value is not None else None


def _token_endpoint(security: Any) -> str | None:
    if not isinstance(security, Mapping):
        return None
    for ext in security.get("extension") or []:
        if isinstance(ext, Mapping) and ext.get("url") == _OAUTH_URIS:
            for sub in ext.get("extension") or []:
                if isinstance(sub, Mapping) and sub.get("url") == "token":
                    return _str(sub.get("valueUri"))
    return None
