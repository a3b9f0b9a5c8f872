"""The handoff rules both shells follow: the strict rule when sending, the patient-matching
policy when receiving; on in-memory stores, the FHIR server mocked (respx)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import respx

from fhir_bridge import model as m
from fhir_bridge.config import ConnectionConfig, Settings
from fhir_bridge.errors import HandoffRefused, InputError
from fhir_bridge.handoff import (
    Handoff,
    prepare_handoff,
    read_arrival,
    receive_handoff,
    send_handoff,
)
from fhir_bridge.store import Store
from fhir_bridge.store.testing import MemoryStore
from tests.helpers import FIXTURES

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
EHR = "https://ehr.test/fhir"
COMPLETE = FIXTURES / "older-adult-caregiver.json"
INCOMPLETE = FIXTURES / "incomplete" / "no-problems-no-meds-no-followup.json"
CAPABILITIES = {
    "resourceType": "CapabilityStatement",
    "status": "active",
    "kind": "instance",
    "fhirVersion": "4.0.1",
    "format": ["json"],
    "rest": [
        {
            "mode": "server",
            "resource": [
                {
                    "type": "Bundle",
                    "interaction": [{"code": "create"}, {"code": "read"}],
                    "conditionalCreate": True,
                }
            ],
        }
    ],
}


SETTINGS = Settings(
    database_url="sqlite://",
    namespace="https://bridge.test/id",
    connections={"ehr": ConnectionConfig(base_url=EHR, enrol="all", patient_mode="create")},
)


@pytest.fixture
def settings() -> Settings:
    return SETTINGS


@pytest.fixture
def store() -> Iterator[Store]:
    s = MemoryStore()
    yield s
    s.close()


def _package(path: Path) -> m.PatientPackage:
    return m.PatientPackage.model_validate(json.loads(path.read_text()))


def _prepared(store: Store, settings: Settings, path: Path) -> Handoff:
    package = _package(path)
    store.put_records(package.records(), [], NOW)
    return prepare_handoff(store, settings, package.patient.id, "transfer", NOW)


@pytest.fixture
def ehr() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=EHR, assert_all_called=False) as router:
        router.get("/metadata").respond(json=CAPABILITIES)
        router.post("/Bundle").respond(
            201, json={"resourceType": "Bundle", "id": "b1"}, headers={"Location": "Bundle/b1"}
        )
        yield router


def test_strict_refuses_a_package_with_errors_and_sends_nothing(
    store: Store, settings: Settings, ehr: respx.MockRouter
) -> None:
    built = _prepared(store, settings, INCOMPLETE)
    assert built.errors
    with pytest.raises(HandoffRefused) as refused:
        asyncio.run(send_handoff(settings, built, "ehr", strict=True))
    assert refused.value.errors == len(built.errors)
    assert "no-medication-list" in {f["code"] for f in refused.value.findings}
    assert len(refused.value.findings) == len(built.findings)  # warnings too, to show
    assert str(refused.value) == f"not sent: {len(built.errors)} errors in the completeness check"
    assert not ehr.calls  # nothing went out, not even the capability lookup


def test_without_strict_a_package_with_errors_is_sent(
    store: Store, settings: Settings, ehr: respx.MockRouter
) -> None:
    built = _prepared(store, settings, INCOMPLETE)
    delivery = asyncio.run(send_handoff(settings, built, "ehr", strict=False))
    assert delivery == "delivered: Bundle/b1 on ehr"
    (sent,) = [c.request for c in ehr.calls if c.request.method == "POST"]
    assert json.loads(sent.content)["identifier"] == built.document["identifier"]


def test_strict_sends_a_package_without_errors(
    store: Store, settings: Settings, ehr: respx.MockRouter
) -> None:
    built = _prepared(store, settings, COMPLETE)
    assert not built.errors
    assert asyncio.run(send_handoff(settings, built, "ehr", strict=True)).startswith("delivered")


@pytest.fixture
def receiver() -> Iterator[tuple[Store, Settings]]:
    """A second store, the receiving side's."""
    s = MemoryStore()
    yield s, SETTINGS
    s.close()


def test_an_unknown_patient_is_filed_as_new_and_queued(
    store: Store, settings: Settings, receiver: tuple[Store, Settings]
) -> None:
    built = _prepared(store, settings, COMPLETE)
    into, their_settings = receiver
    arrival = read_arrival(built.document, "doc.json", their_settings, NOW)
    received = receive_handoff(into, their_settings, arrival, confirm_match=False, now=NOW)
    assert (received.patient_id, received.how) == (built.patient_id, "new patient")
    assert received.records == len(built.package.records()) - 1
    assert {r.id for r in into.records.of_patient(built.patient_id)} == {
        r.id for r in built.package.records()
    }
    assert into.outbox.depth("ehr").pending  # queued for the receiver's connections

    again = receive_handoff(into, their_settings, arrival, confirm_match=False, now=NOW)
    assert (again.patient_id, again.how) == (built.patient_id, "identifier")
    assert into.records.patient_ids() == [built.patient_id]  # no second patient


def _local_twin(package: m.PatientPackage, *, identifiers: bool) -> m.Patient:
    """The same person kept under another id on the receiving side."""
    return package.patient.model_copy(
        update={
            "id": "local-1",
            "identifiers": package.patient.identifiers if identifiers else [],
        }
    )


def test_an_identifier_match_files_the_records_under_the_stored_patient(
    store: Store, settings: Settings, receiver: tuple[Store, Settings]
) -> None:
    built = _prepared(store, settings, COMPLETE)
    into, their_settings = receiver
    into.put_records([_local_twin(built.package, identifiers=True)], [], NOW)
    arrival = read_arrival(built.document, "doc.json", their_settings, NOW)
    received = receive_handoff(into, their_settings, arrival, confirm_match=False, now=NOW)
    assert (received.patient_id, received.how) == ("local-1", "identifier")
    assert into.records.patient_ids() == ["local-1"]
    goals = [r for r in into.records.of_patient("local-1") if isinstance(r, m.Goal)]
    assert goals
    assert all(g.patient.id == "local-1" for g in goals)


def test_a_name_and_birth_date_match_needs_confirmation(
    store: Store, settings: Settings, receiver: tuple[Store, Settings]
) -> None:
    built = _prepared(store, settings, COMPLETE)
    into, their_settings = receiver
    into.put_records([_local_twin(built.package, identifiers=False)], [], NOW)
    arrival = read_arrival(built.document, "doc.json", their_settings, NOW)
    with pytest.raises(InputError) as refused:
        receive_handoff(into, their_settings, arrival, confirm_match=False, now=NOW)
    assert refused.value.source == "doc.json"
    assert "'local-1'" in refused.value.reason
    assert "--confirm-match" in refused.value.reason
    assert into.records.of_patient("local-1") == [
        _local_twin(built.package, identifiers=False)
    ]  # nothing filed

    received = receive_handoff(into, their_settings, arrival, confirm_match=True, now=NOW)
    assert received.patient_id == "local-1"
    assert "uncertain" in received.how
    assert into.records.patient_ids() == ["local-1"]


@pytest.mark.parametrize(
    ("bundle", "reason"),
    [
        ([], "expected a document or transaction Bundle"),
        ({"resourceType": "Patient"}, "expected a document or transaction Bundle"),
        ({"resourceType": "Bundle", "type": "document", "entry": []}, "carries 0"),
    ],
)
def test_what_is_not_a_handoff_is_bad_input(
    bundle: object, reason: str, settings: Settings
) -> None:
    with pytest.raises(InputError) as refused:
        read_arrival(bundle, "doc.json", settings, NOW)
    assert refused.value.source == "doc.json"
    assert reason in refused.value.reason
