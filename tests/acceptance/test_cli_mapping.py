"""`fhir-bridge schema`, `map` and `import` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from fhir_bridge.mappers import check_resource, identifiers_of
from tests.acceptance.conftest import Run
from tests.helpers import example_files, fixture_files


def test_there_are_fixtures_for_six_patients_at_least() -> None:
    assert len(fixture_files()) >= 6


def test_schema_is_a_json_schema_every_fixture_satisfies(cli: Run) -> None:
    done = cli("schema")
    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in fixture_files():
        errors = list(validator.iter_errors(json.loads(path.read_text())))
        assert errors == [], f"{path.name}: {errors[0].message if errors else ''}"


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
def test_map_fixture_prints_one_valid_collection_bundle(cli: Run, path: Path) -> None:
    done = cli("map", path)
    assert done.returncode == 0, done.stderr
    bundle = json.loads(done.stdout)
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "collection"
    types = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Patient", "CarePlan", "Goal", "Condition", "CareTeam"} <= types
    full_urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(set(full_urls)) == len(full_urls)
    for entry in bundle["entry"]:
        assert check_resource(entry["resource"], entry["fullUrl"]) == []
        ours = identifiers_of(entry["resource"])[-1]  # a QuestionnaireResponse has one
        assert ours["system"].startswith("https://bridge.test/id/")


def test_map_and_import_use_the_configured_namespace(cli: Run, tmp_path: Path) -> None:
    (tmp_path / "fhir-bridge.toml").write_text('namespace = "https://care.test/configured"\n')
    mapped = cli("map", fixture_files()[0], namespace=None)
    assert mapped.returncode == 0, mapped.stderr
    entries = json.loads(mapped.stdout)["entry"]
    systems = {identifiers_of(e["resource"])[-1]["system"] for e in entries}
    assert systems
    assert all(s.startswith("https://care.test/configured/") for s in systems)
    bundle = tmp_path / "bundle.json"
    bundle.write_text(mapped.stdout)
    imported = cli("import", bundle, namespace=None)
    assert imported.returncode == 0, imported.stderr
    # the identifiers are ours under the configured namespace, so the record ids come back
    ids = {r["id"] for r in json.loads(imported.stdout)}
    assert ids
    assert ids <= {e["resource"]["identifier"][-1]["value"] for e in entries}
    # an explicit option still wins over the file
    other = cli("map", fixture_files()[0], "--namespace", "https://other.test/ns", namespace=None)
    other_entries = json.loads(other.stdout)["entry"]
    assert other_entries[0]["resource"]["identifier"][-1]["system"].startswith(
        "https://other.test/ns/"
    )


def test_map_then_import_gives_back_the_records(cli: Run, tmp_path: Path) -> None:
    source = fixture_files()[0]
    mapped = cli("map", source)
    assert mapped.returncode == 0, mapped.stderr
    (tmp_path / "bundle.json").write_text(mapped.stdout)
    imported = cli("import", "bundle.json")
    assert imported.returncode == 0, imported.stderr
    records = json.loads(imported.stdout)
    package = json.loads(source.read_text())
    expected_ids = {package["patient"]["id"]} | {
        r["id"] for group, items in package.items() if isinstance(items, list) for r in items
    }
    assert {r["id"] for r in records} == expected_ids


@pytest.mark.parametrize("path", example_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_import_shared_example(cli: Run, path: Path) -> None:
    done = cli("import", path)
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)
    assert isinstance(records, list)
    assert all("id" in r and "kind" in r for r in records)


def test_import_several_files_resolves_references_across_them(cli: Run) -> None:
    folder = next(p for p in example_files() if p.parent.name == "gravity-sdoh").parent
    done = cli(
        "import",
        folder
        / "ServiceRequest-SDOHCC-ServiceRequestActiveFoodPantryApplicationAssistExample.json",
        folder / "Task-SDOHCC-TaskReferralManagementOrderFulfillmentAcceptedExample.json",
        folder / "Patient-pat-53234.json",
    )
    assert done.returncode == 0, done.stderr
    records = {r["kind"]: r for r in json.loads(done.stdout)}
    assert records["referral"]["tracking"]["status"] == "accepted"
    assert records["referral"]["patient"] == {"id": "pat-53234"}
