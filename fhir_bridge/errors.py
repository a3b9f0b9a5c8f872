"""Errors raised by fhir-bridge.

Every error fhir-bridge raises on purpose derives from :class:`BridgeError`::

    BridgeError
    ├── InputError                 a file or document could not be read (file, line, reason)
    ├── MappingError               records that cannot be translated; carries every Problem
    │                              (path, reason) found, not just the first
    ├── FhirError                  talking to a FHIR server failed (resource_type, attempts)
    │   ├── FhirTransportError     no HTTP answer: connect/read timeout, network (error_type)
    │   ├── FhirStatusError        the server answered 4xx/5xx (status, outcome, retry_after)
    │   │   ├── VersionConflict    412, or HAPI's 409 "HAPI-0989 ... not the current version"
    │   │   ├── ResourceNotFound   404
    │   │   ├── ResourceGone       410 (deleted)
    │   │   ├── RateLimited        429 (retry_after seconds when the server said)
    │   │   └── AccessDenied       401 after a fresh token, or 403 (a scope missing): the
    │   │                          connection's credentials, not the record (connection)
    │   ├── NotSupportedByServer   the CapabilityStatement rules it out (resource_type,
    │   │                          interaction)
    │   ├── MalformedResponse      a success answer that is not the FHIR JSON expected
    │   ├── BulkExportFailed       a ``$export`` job failed, or did not finish in time
    │   │                          (status, polls)
    │   └── AuthError              no access token: token endpoint or discovery failed
    │                              (status, error, description, connection)
    ├── LeaseLost                  (store) this worker's claim expired or another worker took
    │                              the work over: its result is not recorded (scope, key)
    ├── StoreUnavailable           (store) the database could not be reached or dropped the
    │                              connection mid-transaction: try again later (error_type)
    ├── PatientHasRecords          (store) a patient to delete still has records kept here:
    │                              delete them with it, or first (patient_id, records)
    ├── UnknownPatient             (sync) an enrolment names a patient the store does not
    │                              hold (patient_id)
    ├── HandoffRefused             (handoff) a strict delivery refused: the completeness check
    │                              found errors (errors, findings)
    ├── SandboxError               (sandbox) the local HAPI server could not be built, started
    │                              or stopped (message, log_tail)
    └── MissingExtra               an optional part is not installed: the HTTP service needs
                                   ``fhir-bridge[server]``, PostgreSQL ``[postgres]`` (extra,
                                   module)

No message ever holds a secret, a token, a query string or resource content: ids, statuses,
codes and counts only. Data is on attributes.

``permanent`` says whether doing the same thing again, unchanged, would fail the same way: a
record that cannot be mapped, an interaction the server rules out, or a 4xx answer other than
408 (timeout), 409 (conflict), 412 (version conflict) and 429 (slow down). The outbox's retry
schedule (``fhir_bridge.sync.RetrySchedule``) dead-letters a permanent failure at once.

Later layers (sync, store) add their own branches under BridgeError.
"""

from __future__ import annotations

from dataclasses import dataclass


class BridgeError(Exception):
    """fhir-bridge could not do what was asked."""

    @property
    def permanent(self) -> bool:
        """Whether the same work, tried again unchanged, would fail the same way."""
        return False


# 4xx answers that may go another way later: the request timed out, the resource was busy or
# changed meanwhile, the server asked us to slow down
TRANSIENT_CLIENT_STATUSES = frozenset({408, 409, 412, 429})


def permanent_status(status: int | None) -> bool:
    """Whether an HTTP error status means the same request will be refused again."""
    return status is not None and 400 <= status < 500 and status not in TRANSIENT_CLIENT_STATUSES


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input, located by a dotted field path."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class MappingError(BridgeError):
    """A record or resource cannot be translated; ``problems`` lists every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems) or "invalid input")

    @property
    def permanent(self) -> bool:
        return True

    def prefixed(self, prefix: str) -> MappingError:
        """The same problems with ``prefix`` put before each path."""
        return MappingError(
            [Problem(f"{prefix}.{p.path}" if p.path else prefix, p.reason) for p in self.problems]
        )


class InputError(BridgeError):
    """A file could not be read as the expected kind of document."""

    def __init__(self, source: str, reason: str, line: int | None = None) -> None:
        self.source = source
        self.reason = reason
        self.line = line
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {reason}")

    @property
    def permanent(self) -> bool:
        return True


# --- FHIR client -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutcomeIssue:
    """One ``OperationOutcome.issue``; ``diagnostics`` may quote data, so never log it."""

    severity: str
    code: str
    diagnostics: str | None = None
    expression: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OperationOutcome:
    """The issues a FHIR server gave with an error (empty when the body held none)."""

    issues: tuple[OutcomeIssue, ...] = ()

    @property
    def codes(self) -> tuple[str, ...]:
        """The issue codes (``not-found``, ``conflict``, ...), safe to log."""
        return tuple(i.code for i in self.issues)


class FhirError(BridgeError):
    """A FHIR server could not be asked, or did not do what was asked.

    ``attempts`` counts the requests sent for this call (more than one after retries).
    """

    def __init__(self, message: str, *, resource_type: str | None = None) -> None:
        self.resource_type = resource_type
        self.attempts = 1
        super().__init__(message)


class FhirTransportError(FhirError):
    """No HTTP answer arrived (connect or read timeout, refused or dropped connection)."""

    def __init__(
        self,
        error_type: str,
        method: str,
        path: str,
        *,
        resource_type: str | None = None,
        retryable: bool = True,
    ) -> None:
        self.error_type = error_type
        self.method = method
        self.path = path
        self.retryable = retryable
        super().__init__(f"{error_type} on {method} {path}", resource_type=resource_type)


class FhirStatusError(FhirError):
    """The server answered with an HTTP error status; ``outcome`` holds its issues."""

    def __init__(
        self,
        status: int,
        outcome: OperationOutcome | None = None,
        retry_after: float | None = None,
        *,
        method: str = "",
        path: str = "",
        resource_type: str | None = None,
    ) -> None:
        self.status = status
        self.outcome = outcome if outcome is not None else OperationOutcome()
        self.retry_after = retry_after
        self.method = method
        self.path = path
        where = f" on {method} {path}" if method else ""
        codes = ", ".join(dict.fromkeys(self.outcome.codes))
        hapi = ", ".join(_hapi_codes(self.outcome))
        detail = "; ".join(x for x in (codes, hapi) if x)
        super().__init__(
            f"HTTP {status}{where}" + (f": {detail}" if detail else ""),
            resource_type=resource_type,
        )

    @property
    def permanent(self) -> bool:
        return permanent_status(self.status)


class VersionConflict(FhirStatusError):  # noqa: N818 - names the domain uses
    """The resource changed on the server since the version named in If-Match (412/409)."""


class ResourceNotFound(FhirStatusError):  # noqa: N818 - names the domain uses
    """The server has no such resource (404)."""


class ResourceGone(FhirStatusError):  # noqa: N818 - names the domain uses
    """The resource was deleted (410)."""


class RateLimited(FhirStatusError):  # noqa: N818 - names the domain uses
    """The server asks us to slow down (429); ``retry_after`` is in seconds when given."""


class NotSupportedByServer(FhirError):  # noqa: N818 - names the domain uses
    """The server's CapabilityStatement says it cannot do this interaction on this type."""

    def __init__(self, resource_type: str | None, interaction: str) -> None:
        self.interaction = interaction
        subject = resource_type or "system"
        super().__init__(
            f"{subject}: the server does not support {interaction}", resource_type=resource_type
        )

    @property
    def permanent(self) -> bool:
        return True


class MalformedResponse(FhirError):  # noqa: N818 - names the domain uses
    """A success answer whose body is not the FHIR JSON expected (e.g. HTML from a proxy)."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        method: str = "",
        path: str = "",
        resource_type: str | None = None,
    ) -> None:
        self.reason = reason
        self.status = status
        self.method = method
        self.path = path
        where = f"{method} {path}: " if method else ""
        super().__init__(f"{where}{reason}", resource_type=resource_type)

    @property
    def permanent(self) -> bool:
        return permanent_status(self.status)


class BulkExportFailed(FhirError):  # noqa: N818 - names the domain uses
    """A Bulk Data export did not deliver: the job failed (``status``: the HTTP status of
    the answer that said so) or did not finish in time; ``polls`` counts the status polls."""

    def __init__(self, reason: str, *, status: int | None = None, polls: int = 0) -> None:
        self.reason = reason
        self.status = status
        self.polls = polls
        super().__init__(reason + (f" (HTTP {status})" if status is not None else ""))

    @property
    def permanent(self) -> bool:
        return self.status is not None and permanent_status(self.status)


class AuthError(FhirError):
    """No access token could be obtained; ``error`` is the OAuth error code when given,
    ``description`` the authorization server's ``error_description`` (its own words about our
    credentials, such as "Token reuse detected": never patient data, cut to 120 characters),
    ``connection`` the connection whose credentials they are, when known."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        error: str | None = None,
        description: str | None = None,
        connection: str | None = None,
    ) -> None:
        self.reason = reason
        self.status = status
        self.error = error
        self.description = description[:120] if description else None
        self.connection = connection
        parts = [reason]
        if status is not None:
            parts.append(f"HTTP {status}")
        if error:
            parts.append(f"{error}: {self.description}" if self.description else error)
        prefix = f"connection {connection!r}: " if connection else ""
        super().__init__(prefix + ": ".join(parts[:1]) + "".join(f" ({p})" for p in parts[1:]))

    @property
    def permanent(self) -> bool:
        """A token endpoint refusing our credentials (4xx) will refuse them again."""
        return permanent_status(self.status)

    def for_connection(self, connection: str) -> AuthError:
        """The same error, naming ``connection``."""
        if self.connection == connection:
            return self
        return AuthError(
            self.reason,
            status=self.status,
            error=self.error,
            description=self.description,
            connection=connection,
        )


class AccessDenied(FhirStatusError):  # noqa: N818 - names the domain uses
    """The FHIR server refused our access token: 401 (even after a fresh token) or 403 (the
    token lacks a scope the request needs). It is the connection's credentials that are at
    fault, not the record: push stops and leaves what is queued in the outbox.
    ``connection`` names the connection, when known."""

    def __init__(
        self,
        status: int,
        outcome: OperationOutcome | None = None,
        retry_after: float | None = None,
        *,
        method: str = "",
        path: str = "",
        resource_type: str | None = None,
        connection: str | None = None,
    ) -> None:
        super().__init__(
            status, outcome, retry_after, method=method, path=path, resource_type=resource_type
        )
        self.connection = connection
        if connection:
            what = "scope missing" if status == 403 else "token refused"
            self.args = (f"connection {connection!r}: {what}: {self.args[0]}",)

    def for_connection(self, connection: str) -> AccessDenied:
        """The same error, naming ``connection``."""
        if self.connection == connection:
            return self
        return AccessDenied(
            self.status,
            self.outcome,
            self.retry_after,
            method=self.method,
            path=self.path,
            resource_type=self.resource_type,
            connection=connection,
        )


def _hapi_codes(outcome: OperationOutcome) -> list[str]:
    """HAPI message codes (``HAPI-0989``) found in diagnostics: safe to show, unlike the text."""
    found: list[str] = []
    for issue in outcome.issues:
        text = issue.diagnostics or ""
        at = text.find("HAPI-")
        while at != -1:
            code = text[at : at + 9]
            if code[5:].isdigit() and code not in found:
                found.append(code)
            at = text.find("HAPI-", at + 5)
    return found


# --- store -------------------------------------------------------------------------------


class LeaseLost(BridgeError):  # noqa: N818 - names the domain uses
    """This worker's claim on some work expired or another worker took it over.

    Whatever the worker was about to record for that work is not recorded: the worker now
    holding the claim (or the next one to take it) does the work again.
    """

    def __init__(self, connection: str, scope: str, key: str) -> None:
        self.connection = connection
        self.scope = scope
        self.key = key
        super().__init__(f"lease lost: {connection} {scope} {key}")


class StoreUnavailable(BridgeError):  # noqa: N818 - names the domain uses
    """The database could not be reached, or failed the transaction for want of a connection
    (a restart, a dropped connection, a full pool, a locked SQLite file).

    The transaction was rolled back (or, failing at its commit, may not have been recorded):
    retrying later is safe. ``error_type`` names the driver's error class; its message is not
    kept, as it may quote a statement.
    """

    def __init__(self, error_type: str) -> None:
        self.error_type = error_type
        super().__init__(f"the database is unavailable ({error_type})")


class PatientHasRecords(BridgeError):  # noqa: N818 - names the domain uses
    """A patient was to be deleted while records of it are still kept here: deleted alone,
    those records would go on being pushed naming a patient that is gone."""

    def __init__(self, patient_id: str, records: int) -> None:
        self.patient_id = patient_id
        self.records = records
        super().__init__(
            f"patient {patient_id!r} still has {records} record{'' if records == 1 else 's'} here: "
            "delete them with it, or first"
        )


# --- handoff -----------------------------------------------------------------------------


class UnknownPatient(BridgeError):  # noqa: N818 - names the domain uses
    """An operation on a patient the store does not hold (enrolling one, for instance)."""

    def __init__(self, patient_id: str) -> None:
        self.patient_id = patient_id
        super().__init__(f"no patient {patient_id!r} in the store")


class HandoffRefused(BridgeError):  # noqa: N818 - names the domain uses
    """A strict delivery was refused: the package's completeness check found errors.

    ``errors`` counts the findings of severity ``error``; ``findings`` holds every finding of
    the check (``code``, ``severity``, ``record``, ``message``: codes and record ids, no
    patient data), so a caller can show what to fix.
    """

    def __init__(self, errors: int, findings: tuple[dict[str, str | None], ...]) -> None:
        self.errors = errors
        self.findings = findings
        super().__init__(f"not sent: {errors} errors in the completeness check")


class MissingExtra(BridgeError):  # noqa: N818 - names what is missing, like LeaseLost
    """An optional part of fhir-bridge is not installed: ``extra`` names it, ``module`` the
    package found missing."""

    def __init__(self, extra: str, module: str) -> None:
        self.extra = extra
        self.module = module
        super().__init__(
            f"this needs fhir-bridge's optional part {extra!r} ({module} is not installed):"
            f" pip install 'fhir-bridge[{extra}]'"
        )
