"""Error answers become the right exception, carrying data and no patient data in messages."""

from __future__ import annotations

import httpx
import pytest

from fhir_bridge.errors import (
    AccessDenied,
    AuthError,
    BridgeError,
    FhirError,
    FhirStatusError,
    MalformedResponse,
    OutcomeIssue,
    ResourceGone,
    ResourceNotFound,
    VersionConflict,
)
from fhir_bridge.fhir import parse_outcome
from tests.unit.fhir.fakes import PATIENT, FakeTime, Script, fhir_json, outcome

pytestmark = pytest.mark.anyio

HAPI_STALE = outcome(
    "processing",
    "HAPI-0989: Trying to update Patient/p1/_history/2 but this is not the current version",
)


async def test_operation_outcome_is_parsed_into_the_error() -> None:
    """Severity, code, diagnostics and expression of each issue are kept on the error."""
    body = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "required",
                "diagnostics": "Patient.birthDate 1970-01-01 is odd",
                "expression": ["Patient.birthDate"],
            },
            {"severity": "warning", "code": "informational"},
        ],
    }
    server = Script(fhir_json(body, 422))
    async with server.client() as fhir:
        with pytest.raises(FhirStatusError) as caught:
            await fhir.update(PATIENT)
    err = caught.value
    assert err.status == 422
    assert err.resource_type == "Patient"
    assert err.outcome.issues == (
        OutcomeIssue(
            "error", "required", "Patient.birthDate 1970-01-01 is odd", ("Patient.birthDate",)
        ),
        OutcomeIssue("warning", "informational"),
    )
    assert isinstance(err, FhirError)
    assert isinstance(err, BridgeError)
    assert str(err) == "HTTP 422 on PUT Patient/p1: required, informational"
    assert "1970" not in str(err)


def test_outcome_location_is_used_when_expression_is_absent() -> None:
    """Older servers put the path in the deprecated issue.location."""
    body = outcome("invalid", location=["Patient.name"])
    assert parse_outcome(body).issues[0].expression == ("Patient.name",)


def test_non_outcome_body_gives_empty_outcome() -> None:
    """An HTML or empty error body still yields an error, with no issues."""
    assert parse_outcome("<html>").issues == ()
    assert parse_outcome({"resourceType": "Patient"}).issues == ()


async def test_412_is_a_version_conflict() -> None:
    """The spec's answer to a stale If-Match is 412."""
    server = Script(fhir_json(outcome("conflict"), 412))
    async with server.client() as fhir:
        with pytest.raises(VersionConflict) as caught:
            await fhir.update(PATIENT, if_match="2")
    assert caught.value.status == 412


async def test_hapi_409_with_hapi_0989_is_a_version_conflict() -> None:
    """HAPI answers a stale If-Match with 409 and HAPI-0989: also VersionConflict."""
    server = Script(fhir_json(HAPI_STALE, 409))
    async with server.client() as fhir:
        with pytest.raises(VersionConflict) as caught:
            await fhir.update(PATIENT, if_match="2")
    assert caught.value.status == 409
    assert "HAPI-0989" in str(caught.value)
    assert "_history" not in str(caught.value)


async def test_other_409_is_not_a_version_conflict() -> None:
    """A 409 for another reason (e.g. delete blocked by references) stays a plain status error."""
    body = outcome("processing", "HAPI-0550: Unable to delete Patient/p1 because of references")
    server = Script(fhir_json(body, 409))
    async with server.client() as fhir:
        with pytest.raises(FhirStatusError) as caught:
            await fhir.delete("Patient", "p1")
    assert type(caught.value) is FhirStatusError


@pytest.mark.parametrize(("status", "cls"), [(404, ResourceNotFound), (410, ResourceGone)])
async def test_404_and_410(status: int, cls: type[FhirStatusError]) -> None:
    """404 is ResourceNotFound and 410 (deleted) is ResourceGone."""
    server = Script(fhir_json(outcome("not-found"), status))
    async with server.client() as fhir:
        with pytest.raises(cls) as caught:
            await fhir.read("Patient", "p1")
    assert caught.value.status == status
    assert caught.value.resource_type == "Patient"


@pytest.mark.parametrize("status", [401, 403])
async def test_401_and_403_are_access_denied_and_name_the_connection_when_told(
    status: int,
) -> None:
    """A refused token or a missing scope is AccessDenied: permanent, the connection's fault;
    told the connection, it names it."""
    server = Script(fhir_json(outcome("forbidden"), status))
    async with server.client() as fhir:
        with pytest.raises(AccessDenied) as caught:
            await fhir.read("Patient", "p1")
    assert caught.value.permanent
    named = caught.value.for_connection("county")
    assert (named.status, named.connection, named.method) == (status, "county", "GET")
    what = "scope missing" if status == 403 else "token refused"
    assert str(named) == f"connection 'county': {what}: HTTP {status} on GET Patient/p1: forbidden"


def test_auth_error_names_the_connection_and_the_servers_description() -> None:
    """The authorization server's error_description says which check failed (cut short)."""
    error = AuthError(
        "token endpoint refused the request",
        status=400,
        error="invalid_client",
        description="Token reuse detected" + "!" * 200,
    ).for_connection("county")
    assert error.connection == "county"
    assert len(error.description or "") == 120
    assert str(error).startswith(
        "connection 'county': token endpoint refused the request (HTTP 400) "
        "(invalid_client: Token reuse detected!!"
    )
    assert error.permanent


async def test_html_error_page_from_a_proxy_is_a_status_error_without_outcome(
    fake_time: FakeTime,
) -> None:
    """A 502 HTML page from a proxy still raises by status (its body is not shown)."""
    page = httpx.Response(
        502, text="<html>Bad gateway</html>", headers={"Content-Type": "text/html"}
    )
    server = Script(page)
    async with server.client(fake_time) as fhir:
        with pytest.raises(FhirStatusError) as caught:
            await fhir.read("Patient", "p1")
    assert caught.value.status == 502
    assert caught.value.outcome.issues == ()


async def test_html_success_body_is_malformed() -> None:
    """A 200 with an HTML login page (a misrouted proxy) is MalformedResponse, not data."""
    page = httpx.Response(200, text="<html>Sign in</html>", headers={"Content-Type": "text/html"})
    server = Script(page)
    async with server.client() as fhir:
        with pytest.raises(MalformedResponse) as caught:
            await fhir.read("Patient", "p1")
    assert caught.value.status == 200
    assert "text/html" in str(caught.value)
    assert "Sign in" not in str(caught.value)


async def test_truncated_json_is_malformed() -> None:
    """A body cut off mid-JSON is MalformedResponse."""
    server = Script(httpx.Response(200, content=b'{"resourceType": "Pati'))
    async with server.client() as fhir:
        with pytest.raises(MalformedResponse):
            await fhir.read("Patient", "p1")


@pytest.mark.parametrize(
    "body", [b"[1, 2]", b'{"id": "p1"}', b'{"resourceType": "Observation", "id": "p1"}']
)
async def test_wrong_shape_is_malformed(body: bytes) -> None:
    """JSON that is not the resource asked for is MalformedResponse."""
    server = Script(httpx.Response(200, content=body))
    async with server.client() as fhir:
        with pytest.raises(MalformedResponse):
            await fhir.read("Patient", "p1")


async def test_error_messages_hold_no_query_string() -> None:
    """Identifiers in a conditional query (patient data) stay out of error messages."""
    server = Script(fhir_json(outcome("multiple-matches"), 412))
    async with server.client() as fhir:
        with pytest.raises(VersionConflict) as caught:
            await fhir.conditional_update(
                {"resourceType": "Patient"}, "identifier=urn:mrn|123-45-6789"
            )
    assert "6789" not in str(caught.value)
    assert caught.value.path == "Patient"
