"""Capability discovery and the decisions it drives, on statements shaped like real EHRs'."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from fhir_bridge.errors import MalformedResponse, NotSupportedByServer
from fhir_bridge.fhir import ServerCapabilities, WriteStrategy, change_detection, write_strategy
from tests.unit.fhir.fakes import Script, fhir_json

pytestmark = pytest.mark.anyio

READ_SEARCH = ["read", "search-type"]
ALL = [
    "read",
    "vread",
    "search-type",
    "create",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
]


def resource(
    type_: str, interactions: list[str], params: Sequence[str] = (), **flags: Any
) -> dict[str, Any]:
    return {
        "type": type_,
        "interaction": [{"code": c} for c in interactions],
        "searchParam": [{"name": p, "type": "token"} for p in params],
        **flags,
    }


def statement(resources: list[dict[str, Any]], system: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "resource": resources,
                "interaction": [{"code": c} for c in system],
                **extra,
            }
        ],
    }


# Oracle Health (Millennium) R4: care-plan types read/search only; batch, no transaction.
ORACLE = {
    **statement(
        [
            resource("CarePlan", READ_SEARCH, ["patient", "category", "_lastUpdated"]),
            resource("Goal", READ_SEARCH, ["patient", "_lastUpdated"]),
            resource("ServiceRequest", READ_SEARCH, ["patient"]),
            resource("Condition", [*READ_SEARCH, "create", "update"], ["patient"]),
            resource("Provenance", ["read", "create"]),
        ],
        ["batch"],
    ),
    "software": {"name": "Millennium", "version": "2025.01"},
}

# Epic R4: read/search, Task updatable, _lastUpdated not among the search params.
EPIC = statement(
    [
        resource("CarePlan", READ_SEARCH, ["patient", "category"]),
        resource("Goal", READ_SEARCH, ["patient"]),
        resource("Task", [*READ_SEARCH, "update"], ["patient", "focus"], versioning="versioned"),
    ],
    [],
)

# HAPI: everything, conditional operations, versioned-update, transaction (batch undeclared).
HAPI = {
    **statement(
        [
            resource(
                "CarePlan",
                ALL,
                ["patient", "_lastUpdated", "identifier"],
                versioning="versioned-update",
                conditionalCreate=True,
                conditionalUpdate=True,
                conditionalDelete="multiple",
            )
        ],
        ["transaction", "history-system"],
    ),
    "software": {"name": "HAPI FHIR Server", "version": "8.8.0"},
}


def test_software_and_version_are_read() -> None:
    """Software name and version and the FHIR version come from the statement."""
    caps = ServerCapabilities.from_statement(HAPI)
    assert (caps.software_name, caps.software_version, caps.fhir_version) == (
        "HAPI FHIR Server",
        "8.8.0",
        "4.0.1",
    )


def test_oracle_like_care_plan_is_read_only() -> None:
    """CarePlan read/search only: not writable, and require() refuses create and update."""
    caps = ServerCapabilities.from_statement(ORACLE)
    assert caps.can("CarePlan", "read")
    assert caps.can("CarePlan", "search-type")
    assert not caps.writable("CarePlan")
    with pytest.raises(NotSupportedByServer) as caught:
        caps.require("CarePlan", "update")
    assert (caught.value.resource_type, caught.value.interaction) == ("CarePlan", "update")
    assert str(caught.value) == "CarePlan: the server does not support update"
    assert caps.writable("Condition")
    assert caps.writable("Provenance")


def test_oracle_like_has_batch_but_no_transaction_and_no_conditional_writes() -> None:
    """Batch without transaction; no conditional create or update declared anywhere."""
    caps = ServerCapabilities.from_statement(ORACLE)
    assert caps.supports_batch()
    assert not caps.supports_transaction()
    assert not caps.supports_conditional_update("Condition")
    assert not caps.supports_conditional_create("Condition")


def test_undeclared_type_can_do_nothing() -> None:
    """A type the statement does not list is treated as unsupported."""
    caps = ServerCapabilities.from_statement(ORACLE)
    assert not caps.can("Task", "read")
    assert not caps.writable("Task")


def test_epic_like_has_no_last_updated() -> None:
    """Where _lastUpdated is not listed as a search param it is unsupported."""
    caps = ServerCapabilities.from_statement(EPIC)
    assert not caps.supports_last_updated("Goal")
    assert caps.supports_search_param("Goal", "patient")
    assert ServerCapabilities.from_statement(ORACLE).supports_last_updated("Goal")


def test_rest_level_search_params_apply_to_every_type() -> None:
    """A searchParam on rest (all types) counts for each searchable type."""
    caps = ServerCapabilities.from_statement(
        statement([resource("Goal", READ_SEARCH)], [], searchParam=[{"name": "_lastUpdated"}])
    )
    assert caps.supports_last_updated("Goal")


def test_hapi_like_supports_conditional_ops_and_if_match() -> None:
    """HAPI declares conditional create/update and versioned-update (If-Match)."""
    caps = ServerCapabilities.from_statement(HAPI)
    assert caps.supports_transaction()
    assert not caps.supports_batch()
    assert caps.supports_conditional_create("CarePlan")
    assert caps.supports_conditional_update("CarePlan")
    assert caps.supports_if_match("CarePlan")
    assert caps.supports_last_updated("CarePlan")
    assert caps.can(None, "history-system")


def test_smart_token_endpoint_is_read_from_security() -> None:
    """The oauth-uris extension on rest.security names the token endpoint."""
    security = {
        "extension": [
            {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [{"url": "token", "valueUri": "https://auth.test/token"}],
            }
        ]
    }
    caps = ServerCapabilities.from_statement(statement([], [], security=security))
    assert caps.token_endpoint == "https://auth.test/token"


def test_not_a_capability_statement_is_malformed() -> None:
    """Anything but a CapabilityStatement is refused."""
    with pytest.raises(MalformedResponse):
        ServerCapabilities.from_statement({"resourceType": "OperationOutcome"})


@pytest.mark.parametrize(
    ("server", "resource_type", "expected"),
    [
        (ORACLE, "CarePlan", WriteStrategy("CarePlan", writable=False)),
        (
            ORACLE,
            "Condition",
            WriteStrategy("Condition", True, "batch", "search-then-write", if_match=False),
        ),
        (EPIC, "Task", WriteStrategy("Task", True, "single", "search-then-write", if_match=False)),
        (
            HAPI,
            "CarePlan",
            WriteStrategy("CarePlan", True, "transaction", "conditional-update", if_match=True),
        ),
    ],
)
def test_write_strategy(
    server: dict[str, Any], resource_type: str, expected: WriteStrategy
) -> None:
    """Transaction > batch > single; conditional update when declared; If-Match on
    versioned-update; read-only types are said to be so."""
    assert write_strategy(ServerCapabilities.from_statement(server), resource_type) == expected


@pytest.mark.parametrize(
    ("server", "resource_type", "expected"),
    [
        (HAPI, "CarePlan", "_lastUpdated"),
        (EPIC, "Goal", "search"),
        (statement([resource("Goal", ["read", "history-type"])], []), "Goal", "history"),
        (statement([resource("Goal", ["read"])], []), "Goal", "read"),
    ],
)
def test_change_detection(server: dict[str, Any], resource_type: str, expected: str) -> None:
    """_lastUpdated when declared, else type history, else plain search, else re-reading."""
    assert change_detection(ServerCapabilities.from_statement(server), resource_type) == expected


# --- the client consulting them -------------------------------------------------------------


async def test_capabilities_are_fetched_once_per_client() -> None:
    """GET /metadata once; later calls use the cached statement."""
    server = Script(fhir_json(ORACLE))
    async with server.client() as fhir:
        first = await fhir.capabilities()
        second = await fhir.capabilities()
    assert first is second
    assert [r.url.path for r in server.requests] == ["/fhir/metadata"]


async def test_checked_client_refuses_writes_to_read_only_types_without_sending() -> None:
    """With check_capabilities, updating an Oracle CarePlan raises NotSupportedByServer."""
    server = Script(fhir_json(ORACLE))
    plan = {"resourceType": "CarePlan", "id": "cp1"}
    async with server.client(check_capabilities=True) as fhir:
        with pytest.raises(NotSupportedByServer) as caught:
            await fhir.update(plan)
        with pytest.raises(NotSupportedByServer):
            await fhir.create(plan)
    assert caught.value.interaction == "update"
    assert [r.url.path for r in server.requests] == ["/fhir/metadata"]


async def test_checked_client_refuses_transaction_and_conditional_update_on_oracle() -> None:
    """No transaction and no conditional update declared: both refused before sending."""
    server = Script(fhir_json(ORACLE))
    condition = {"resourceType": "Condition"}
    async with server.client(check_capabilities=True) as fhir:
        with pytest.raises(NotSupportedByServer) as tx:
            await fhir.transaction({"resourceType": "Bundle", "type": "transaction"})
        with pytest.raises(NotSupportedByServer) as cu:
            await fhir.conditional_update(condition, "identifier=urn:c|1")
    assert (tx.value.resource_type, tx.value.interaction) == (None, "transaction")
    assert cu.value.interaction == "conditional-update"
    assert len(server.requests) == 1


async def test_checked_client_allows_what_is_declared() -> None:
    """A declared read goes through."""
    server = Script(fhir_json(ORACLE), fhir_json({"resourceType": "CarePlan", "id": "cp1"}))
    async with server.client(check_capabilities=True) as fhir:
        assert (await fhir.read("CarePlan", "cp1"))["id"] == "cp1"


async def test_unchecked_client_sends_anyway() -> None:
    """By default the client does not consult the statement (the caller decides)."""
    server = Script(fhir_json({"resourceType": "CarePlan", "id": "cp1"}))
    async with server.client() as fhir:
        await fhir.update({"resourceType": "CarePlan", "id": "cp1"})
    assert [r.method for r in server.requests] == ["PUT"]
