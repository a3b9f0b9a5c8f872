"""internal -> FHIR -> internal is the identity; FHIR -> internal -> FHIR is a fixed point."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given

from fhir_bridge import model as m
from fhir_bridge.mappers import MappingContext, check_package, from_fhir, to_bundle
from tests.unit.strategies import packages

CTX = MappingContext("https://bridge.test/id", datetime(2025, 3, 1, tzinfo=UTC))


def _by_key(records: list[m.Record]) -> dict[tuple[str, str], m.Record]:
    return {(type(r).__name__, r.id): r for r in records}


@given(packages())
def test_internal_to_fhir_to_internal_is_identity(package: m.PatientPackage) -> None:
    check_package(package)
    bundle = to_bundle(package.records(), CTX)
    back = from_fhir([(e["resource"], e["fullUrl"]) for e in bundle["entry"]], CTX)
    assert _by_key(back.records) == _by_key(package.records())


@given(packages())
def test_fhir_to_internal_to_fhir_is_a_fixed_point(package: m.PatientPackage) -> None:
    first = to_bundle(package.records(), CTX)
    records = from_fhir([(e["resource"], e["fullUrl"]) for e in first["entry"]], CTX).records
    second = to_bundle(records, CTX)
    assert second["entry"] == first["entry"]


@given(packages())
def test_every_reference_of_a_package_resolves_inside_its_bundle(package: m.PatientPackage) -> None:
    bundle = to_bundle(package.records(), CTX)
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    assert len(full_urls) == len(bundle["entry"])

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["reference"]] if isinstance(node.get("reference"), str) else []
            return found + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    internal = [
        r for e in bundle["entry"] for r in refs(e["resource"]) if r.startswith("urn:uuid:")
    ]
    assert set(internal) <= full_urls
