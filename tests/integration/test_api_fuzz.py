"""Property-based requests generated from our own OpenAPI document (schemathesis): whatever a
client sends, the service answers without a server error. The connection is the real HAPI
server, so the generated pushes, pulls and handoffs really run."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from fhir_bridge.api import create_app
from fhir_bridge.config import ConnectionConfig, Settings
from fhir_bridge.documents import read_records
from fhir_bridge.store import Store
from tests.api_client import api_keys
from tests.helpers import FIXTURES

# schemathesis reads the schema when this module loads; the fixture below points the same app
# at the real server before any request is sent (routes read app.state.settings per request)
FOLDER = Path(tempfile.mkdtemp(prefix="fhir-bridge-fuzz-"))
DATABASE = f"sqlite:///{FOLDER / 'fuzz.db'}"
APP = create_app(Settings(database_url=DATABASE))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
KEY: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def live(fhir_base_url: str) -> Iterator[None]:
    APP.state.settings = Settings(
        database_url=DATABASE,
        namespace=f"https://bridge.test/{uuid.uuid4().hex[:10]}",
        connections={"hapi": ConnectionConfig(base_url=fhir_base_url, enrol="all")},
    )
    KEY["admin"] = api_keys(DATABASE)["admin"]
    store = Store(DATABASE, migrate=False)
    store.put_records(
        read_records(FIXTURES / "older-adult-caregiver.json"), ["hapi"], datetime.now(UTC)
    )
    store.close()
    yield
    shutil.rmtree(FOLDER, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    response = case.call(headers={"Authorization": f"Bearer {KEY['admin']}"})
    case.validate_response(response, checks=[not_a_server_error])
