"""Reading what a server says about a failure: OperationOutcome and the error class."""

from __future__ import annotations

from typing import Any

from fhir_bridge.errors import (
    AccessDenied,
    FhirStatusError,
    OperationOutcome,
    OutcomeIssue,
    RateLimited,
    ResourceGone,
    ResourceNotFound,
    VersionConflict,
)

# HAPI answers a stale If-Match with 409 and these words rather than the spec's 412.
_VERSION_CONFLICT_MARKERS = (
    "hapi-0989",
    "not the current version",
    "version conflict",
    "version constraint failure",
)


def parse_outcome(body: Any) -> OperationOutcome:
    """The issues of an OperationOutcome body; anything else gives an empty outcome."""
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return OperationOutcome()
    issues = []
    for raw in body.get("issue") or []:
        if not isinstance(raw, dict):
            continue
        expression = raw.get("expression") or raw.get("location") or []
        diagnostics = raw.get("diagnostics")
        issues.append(
            OutcomeIssue(
                severity=str(raw.get("severity") or ""),
                code=str(raw.get("code") or ""),
                diagnostics=diagnostics if isinstance(diagnostics, str) else None,
                expression=tuple(str(e) for e in expression if isinstance(e, str)),
            )
        )
    return OperationOutcome(tuple(issues))


def is_version_conflict(status: int, outcome: OperationOutcome) -> bool:
    """412 always; 409 when the server says the version was stale (HAPI-0989)."""
    if status == 412:
        return True
    if status != 409:
        return False
    texts = " ".join((i.diagnostics or "").lower() for i in outcome.issues)
    return any(marker in texts for marker in _VERSION_CONFLICT_MARKERS)


def status_error(
    status: int,
    outcome: OperationOutcome,
    retry_after: float | None,
    *,
    method: str,
    path: str,
    resource_type: str | None,
) -> FhirStatusError:
    """The most specific :class:`FhirStatusError` for an error answer."""
    cls: type[FhirStatusError] = FhirStatusError
    if is_version_conflict(status, outcome):
        cls = VersionConflict
    elif status == 404:
        cls = ResourceNotFound
    elif status == 410:
        cls = ResourceGone
    elif status == 429:
        cls = RateLimited
    elif status in (401, 403):
        cls = AccessDenied
    return cls(status, outcome, retry_after, method=method, path=path, resource_type=resource_type)
