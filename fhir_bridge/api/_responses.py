"""What the JSON routes answer: one pydantic model per payload, so ``/openapi.json`` describes
every response. Field names and values are the API's contract (docs/api.md); times are ISO
8601 text exactly as the store gives them. FHIR resources travel as they are (plain JSON
objects, described but not re-modelled here)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    GetJsonSchemaHandler,
    SerializationInfo,
    TypeAdapter,
    WithJsonSchema,
    WrapSerializer,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from fhir_bridge import model as m
from fhir_bridge import store as s

_RECORD_SCHEMA = TypeAdapter(m.AnyRecord).core_schema


def _without_none(record: m.Record, _: Any, info: SerializationInfo) -> dict[str, Any]:
    """A record as internal JSON: fields without a value are left out, as everywhere else."""
    return record.model_dump(mode=info.mode, exclude_none=True)


class _DescribedAsRecord:
    """Describes the serialised record as the record models (not as the serialiser's dict)."""

    @classmethod
    def __get_pydantic_json_schema__(
        cls, _: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(_RECORD_SCHEMA)


Record = Annotated[m.AnyRecord, WrapSerializer(_without_none), _DescribedAsRecord]
"""One internal record (its ``kind`` says which), fields without a value left out."""

FhirBundle = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "description": "A FHIR R4 Bundle",
            "properties": {
                "resourceType": {"const": "Bundle"},
                "type": {"type": "string"},
                "entry": {"type": "array", "items": {"type": "object"}},
            },
            "required": ["resourceType"],
        }
    ),
]


class Health(BaseModel):
    status: Literal["ok"]


class LastContact(BaseModel):
    """The latest finished run with a connection's server."""

    at: str
    direction: Literal["push", "pull"]
    outcome: str | None

    @classmethod
    def of(cls, run: s.Run) -> LastContact:
        finished = run.finished_at or run.started_at
        return cls(at=finished.isoformat(), direction=run.direction, outcome=run.outcome)


class Ready(BaseModel):
    status: Literal["ready"]
    connections: dict[str, LastContact | None] | None = Field(
        default=None,
        description="Per connection, when its server was last reached (null: never); "
        "only for a caller with a read key",
    )


class Unready(BaseModel):
    status: Literal["database unreachable"]


class RecordPage(BaseModel):
    items: list[Record]
    limit: int
    offset: int
    next_offset: int | None = Field(description="The offset of the next page; null at the end")


class PlannedWrite(BaseModel):
    """One write a dry run would send."""

    action: str
    resource_type: str
    identifier: str = Field(description="system|value")
    changes: list[str]
    warnings: list[str] = Field(
        default_factory=list,
        description="Codes outside US Core's extensible bindings (path: reason)",
    )


class PlannedDeletion(BaseModel):
    """What a dry run's push would do to one resource a local deletion reaches."""

    action: Literal["entered-in-error", "delete", "blocked", "disputed"] = Field(
        description="a status update to entered-in-error, a DELETE, waiting (blocked: the "
        "server takes neither), or waiting for a conflict to be resolved (disputed)"
    )
    resource_type: str = Field(description="empty for a disputed record")
    identifier: str = Field(description="system|value; empty for a disputed record")
    record: str = Field(description="kind/id of the record deleted here")
    reason: str = Field(description="why it waits (blocked, disputed)")


class Pushed(BaseModel):
    connection: str
    counts: dict[str, int]
    planned: list[PlannedWrite] | None = Field(default=None, description="With dry_run only")
    planned_deletions: list[PlannedDeletion] | None = Field(
        default=None, description="With dry_run only: the local deletions due now"
    )


class Pulled(BaseModel):
    connection: str
    counts: dict[str, int]
    problems: list[str]


class Run(BaseModel):
    """One push or pull run."""

    id: int
    connection: str
    direction: Literal["push", "pull"]
    started_at: str
    finished_at: str | None = Field(description="null while running")
    outcome: str | None
    counts: dict[str, Any]

    @classmethod
    def of(cls, run: s.Run) -> Run:
        return cls(
            id=run.id,
            connection=run.connection,
            direction=run.direction,
            started_at=run.started_at.isoformat(),
            finished_at=None if run.finished_at is None else run.finished_at.isoformat(),
            outcome=run.outcome,
            counts=run.counts,
        )


class NotSent(BaseModel):
    """A resource type a connection's server does not take, and why."""

    type: str
    source: str = Field(description="capability-statement (declared read-only) or run-time")
    status: int | None = Field(description="The HTTP status of the refusal (run-time)")
    since: str = Field(description="When it was declared or refused (ISO instant)")
    reason: str
    said: str | None = Field(description="The server's diagnostics, trimmed and id-free")
    waiting: int = Field(description="Outbox entries blocked on this type")


class RefusedMode(BaseModel):
    """A Bundle mode (transaction, batch) the server refused at run time."""

    mode: str
    source: str
    status: int | None
    since: str
    reason: str
    said: str | None


class RefusedInteraction(BaseModel):
    """Another interaction of a type the server refused at run time: ``conditional-update``
    (push searches by identifier first) or ``search-_lastUpdated`` (pull reads per patient)."""

    type: str
    interaction: str
    source: str
    status: int | None
    since: str
    reason: str
    said: str | None


class ConnectionStatus(BaseModel):
    base_url: str
    queue: dict[str, int] = Field(description="Outbox entries per status")
    enrol: Literal["all", "listed"] = Field(
        description="Whose records go there: every patient's, or enrolled patients' only"
    )
    enrolled: int = Field(description="Patients enrolled with the connection")
    dead_letters: int
    last_push: Run | None
    last_pull: Run | None
    not_sent: list[NotSent] = Field(
        default_factory=list, description="Resource types not sent to this server, and why"
    )
    refused_modes: list[RefusedMode] = Field(
        default_factory=list, description="Bundle modes the server refused (push falls back)"
    )
    refused_interactions: list[RefusedInteraction] = Field(
        default_factory=list, description="Other interactions of a type the server refused"
    )
    patient_mode: Literal["match", "create"] = Field(
        default="create", description="The mode in force (set, or decided by the base URL)"
    )
    matched: int = Field(default=0, description="Patients matched to the EHR's own Patient")
    held: int = Field(default=0, description="Patients held: no single match on the EHR")


class PatientMatch(BaseModel):
    """How one patient is matched on one connection's EHR, or why it is held."""

    connection: str
    patient_id: str
    state: Literal["matched", "held"]
    server_id: str | None = Field(description="The EHR's Patient id, when matched")
    step: str | None = Field(
        description="identifier, $match, demographics, link or accepted (matched), or the "
        "step that failed (held)"
    )
    reason: str | None = Field(description="Why held: counts and step names, no PHI")
    candidates: int
    score: float | None
    decided_at: str
    decided_by: str

    @classmethod
    def of(cls, match: s.PatientMatch) -> PatientMatch:
        return cls(
            connection=match.connection,
            patient_id=match.patient_id,
            state=match.state,
            server_id=match.server_id,
            step=match.step,
            reason=match.reason,
            candidates=match.candidates,
            score=match.score,
            decided_at=match.decided_at.isoformat(),
            decided_by=match.decided_by,
        )


class AcceptMatch(BaseModel):
    """Settle a held patient by hand: the EHR's Patient id to take as ours."""

    server_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-.]+$")


class SyncStatus(BaseModel):
    connections: dict[str, ConnectionStatus]
    dead_letters: int
    open_conflicts: int
    failed_runs: list[Run]
    recent_runs: list[Run]


class EnrolmentOut(BaseModel):
    patient_id: str
    connection: str
    mrn: str | None
    enrolled_at: str

    @classmethod
    def of(cls, e: s.Enrolment) -> EnrolmentOut:
        return cls(
            patient_id=e.patient_id,
            connection=e.connection,
            mrn=e.mrn,
            enrolled_at=e.enrolled_at.isoformat(),
        )


class Enrolments(BaseModel):
    items: list[EnrolmentOut]


class EnrolmentIn(BaseModel):
    """The body of ``PUT .../enrolments/{connection}`` (optional)."""

    model_config = {"extra": "forbid"}

    mrn: str | None = Field(
        default=None, min_length=1, description="The patient's MRN in that EHR; absent: kept"
    )


class EnrolmentMade(BaseModel):
    enrolment: EnrolmentOut
    queued: int = Field(description="The patient's records queued for the connection")


class ServerResource(BaseModel):
    resource_type: str
    id: str


class Unenrolment(BaseModel):
    was_enrolled: bool
    dropped: int = Field(description="Queued entries for the connection dropped")
    remaining: list[ServerResource] = Field(
        description="What stays on the connection's server: fhir-bridge never deletes there"
    )


class DeadLetter(BaseModel):
    id: int
    connection: str
    kind: str
    record_id: str
    patient_id: str | None
    record_version: int
    attempts: int
    reason: str | None = Field(description="The server's reason (status and issue codes)")

    @classmethod
    def of(cls, entry: s.OutboxEntry) -> DeadLetter:
        return cls(
            id=entry.id,
            connection=entry.connection,
            kind=entry.kind,
            record_id=entry.record_id,
            patient_id=entry.patient_id,
            record_version=entry.record_version,
            attempts=entry.attempts,
            reason=entry.last_error,
        )


class DeadLetters(BaseModel):
    items: list[DeadLetter]


class Requeued(BaseModel):
    id: int
    status: Literal["pending"]


class ConflictOut(BaseModel):
    """Fields changed both by the care manager and in the EHR."""

    id: int
    connection: str
    kind: str
    record_id: str
    fields: list[str]
    base: dict[str, Any] | None = Field(description="The record as last synced")
    local: dict[str, Any]
    remote: dict[str, Any]
    status: str
    created_at: str

    @classmethod
    def of(cls, c: s.Conflict) -> ConflictOut:
        return cls(
            id=c.id,
            connection=c.connection,
            kind=c.kind,
            record_id=c.record_id,
            fields=c.fields,
            base=c.base,
            local=c.local,
            remote=c.remote,
            status=c.status,
            created_at=c.created_at.isoformat(),
        )


class Conflicts(BaseModel):
    items: list[ConflictOut]


class StoredVersion(BaseModel):
    kind: str
    id: str
    version: int


class Resolved(BaseModel):
    id: int
    status: Literal["resolved"]
    take: Literal["local", "ehr", "merged"]
    queued_for: str = Field(description="The connection the record is queued for")
    record: StoredVersion


class Change(BaseModel):
    """An internal record changed by a pull."""

    cursor: int
    connection: str
    kind: str
    id: str
    patient_id: str | None
    version: int
    change: Literal["created", "updated", "deleted"]
    at: str

    @classmethod
    def of(cls, c: s.Change) -> Change:
        return cls(
            cursor=c.cursor,
            connection=c.connection,
            kind=c.kind,
            id=c.record_id,
            patient_id=c.patient_id,
            version=c.record_version,
            change=c.change,
            at=c.at.isoformat(),
        )


class ChangePage(BaseModel):
    items: list[Change]
    next_cursor: int = Field(description="Ask again with since=next_cursor")


class OperationOutcome(BaseModel):
    """The FHIR answer to a notification (``application/fhir+json``)."""

    resourceType: Literal["OperationOutcome"]  # noqa: N815 - FHIR's element name
    issue: list[dict[str, Any]]
