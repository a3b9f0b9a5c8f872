"""The store's tables (SQLAlchemy 2.0 ORM). Changed only through Alembic migrations."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class OutboxStatus(StrEnum):
    pending = "pending"
    done = "done"
    dead = "dead"
    blocked = "blocked"  # waits for the server to accept its resource type (see ``refusals``)
    held = "held"  # the patient is not matched on the EHR yet: waits for `match --accept`


class RecordRow(Base):
    """One internal record, as JSON, with a version that grows on every change."""

    __tablename__ = "records"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[str | None] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    data: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]
    deleted: Mapped[bool] = mapped_column(default=False)


class LinkRow(Base):
    """Where one emitted resource lives on one connection's server, and what we last sent."""

    __tablename__ = "links"

    connection: Mapped[str] = mapped_column(String(100), primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    identifier: Mapped[str] = mapped_column(String(300), primary_key=True)
    kind: Mapped[str | None] = mapped_column(String(32))
    record_id: Mapped[str | None] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[str | None] = mapped_column(String(64))
    last_updated: Mapped[str | None] = mapped_column(String(40))
    sent_hash: Mapped[str | None] = mapped_column(String(64))
    sent_json: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    server_json: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    synced_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_links_record", "connection", "kind", "record_id"),
        Index("ix_links_server", "connection", "resource_type", "resource_id"),
    )


class OutboxRow(Base):
    """A record waiting to be pushed to one connection (one row per record and connection)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    connection: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(String(64))
    record_version: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    blocked_on: Mapped[str | None] = mapped_column(String(64))  # the type the server refuses
    # the entry carries the record's local deletion (migration 0015), not a write
    deleting: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (
        UniqueConstraint("connection", "kind", "record_id", name="uq_outbox_record"),
        Index("ix_outbox_due", "connection", "status", "next_attempt_at"),
    )


class SyncRunRow(Base):
    """One push or pull run: when, where, and what it did."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    connection: Mapped[str] = mapped_column(String(100))
    direction: Mapped[str] = mapped_column(String(8))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    worker: Mapped[str | None] = mapped_column(String(120))


class SyncLogRow(Base):
    """One thing a run did to one resource (written, skipped, failed), in order."""

    __tablename__ = "sync_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id"))
    at: Mapped[datetime]
    resource_type: Mapped[str] = mapped_column(String(64))
    identifier: Mapped[str] = mapped_column(String(300))
    action: Mapped[str] = mapped_column(String(16))
    record_version: Mapped[int | None]
    server_version: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)


class WatermarkRow(Base):
    """Up to when a connection's changes of one resource type have been pulled."""

    __tablename__ = "watermarks"

    connection: Mapped[str] = mapped_column(String(100), primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_updated: Mapped[str] = mapped_column(String(40))


class ConflictRow(Base):
    """A field changed both locally and in the EHR, waiting for a person to decide."""

    __tablename__ = "conflicts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    connection: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[str] = mapped_column(String(64))
    fields: Mapped[list[Any]] = mapped_column(JSON)
    base: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    local: Mapped[dict[str, Any]] = mapped_column(JSON)
    remote: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (Index("ix_conflicts_open", "status", "connection"),)


class HandoffRow(Base):
    """One transition-of-care package built, and where it went."""

    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    package_id: Mapped[str] = mapped_column(String(64), index=True)
    patient_id: Mapped[str] = mapped_column(String(64))
    handoff_type: Mapped[str] = mapped_column(String(16))
    author: Mapped[str | None] = mapped_column(String(200))
    destination: Mapped[str | None] = mapped_column(String(300))
    findings: Mapped[list[Any]] = mapped_column(JSON)
    delivery: Mapped[str | None] = mapped_column(Text)
    document: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime]


class ApiKeyRow(Base):
    """An API key of the HTTP service: only its SHA-256 is kept."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    revoked: Mapped[bool] = mapped_column(default=False)
    expires_at: Mapped[datetime | None]  # None: never
    revoked_at: Mapped[datetime | None]


class ChangeRow(Base):
    """One internal record changed by a pull, in the order applied: the platform's change feed.

    ``id`` is the feed's cursor: a reader asks for changes after the last id it has seen.
    """

    __tablename__ = "changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    connection: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(String(64))
    record_version: Mapped[int]
    change: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]


class LeaseRow(Base):
    """A time-limited claim on a unit of work, held by one worker.

    Scopes: ``push`` (key: a patient id; at most one worker pushes a patient at a time, so
    changes to one record apply in order), ``pull`` (key: a resource type; the watermark
    moves under one worker), ``enqueue`` (key ``*``). ``token`` is new on every claim: a
    worker completes work only while the lease still carries its token and has not expired.
    """

    __tablename__ = "leases"

    connection: Mapped[str] = mapped_column(String(100), primary_key=True)
    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120), index=True)
    token: Mapped[str] = mapped_column(String(32))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class WorkerRow(Base):
    """A worker process that has announced itself, and when it last said it was alive."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int]
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    stopped_at: Mapped[datetime | None]


class ThrottleRow(Base):
    """A server asked us to wait (429 with Retry-After): no worker sends to it before ``until``."""

    __tablename__ = "throttles"

    connection: Mapped[str] = mapped_column(String(100), primary_key=True)
    until: Mapped[datetime]
    set_at: Mapped[datetime]


class PatientMatchRow(Base):
    """How one patient was found on one connection's EHR (matched), or why it was not (held)."""

    __tablename__ = "patient_matches"

    connection: Mapped[str] = mapped_column(String(100), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    server_id: Mapped[str | None] = mapped_column(String(64))
    step: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(300))
    candidates: Mapped[int] = mapped_column(Integer, default=0)
    score: Mapped[float | None] = mapped_column(Float)
    decided_at: Mapped[datetime]
    decided_by: Mapped[str] = mapped_column(String(120))

    __table_args__ = (Index("ix_patient_matches_state", "connection", "state"),)


class EnrolmentRow(Base):
    """A patient enrolled with one connection (their records go there), with that EHR's MRN."""

    __tablename__ = "enrolments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(String(64))
    connection: Mapped[str] = mapped_column(String(100), index=True)
    mrn: Mapped[str | None] = mapped_column(String(200))
    enrolled_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("patient_id", "connection", name="uq_enrolments_patient_connection"),
    )


class RefusalRow(Base):
    """Something a connection's server does not take: a Bundle mode or a type's writes.

    ``what`` is ``transaction``, ``batch``, ``<Type>:write`` or ``<Type>:conditional-update``;
    ``source`` says how we know: ``capability-statement`` (declared) or ``run-time`` (the
    server refused it, with ``status`` and its diagnostics ``said``, trimmed and id-free).
    ``statement`` is the fingerprint of the CapabilityStatement in force then: when the
    statement changes, what was learnt under the old one is forgotten.
    """

    __tablename__ = "refusals"

    connection: Mapped[str] = mapped_column(String(100), primary_key=True)
    what: Mapped[str] = mapped_column(String(100), primary_key=True)
    source: Mapped[str] = mapped_column(String(24))
    status: Mapped[int | None]
    said: Mapped[str | None] = mapped_column(String(200))
    statement: Mapped[str] = mapped_column(String(64))
    refused_at: Mapped[datetime]


class SubscriptionSecretRow(Base):
    """The secret one Subscription on an EHR sends with its notifications: only its SHA-256.

    One row per secret issued; rotation adds a row and gives the older ones of that
    Subscription an ``expires_at`` (a short grace for notifications already on their way).
    """

    __tablename__ = "subscription_secrets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    connection: Mapped[str] = mapped_column(String(100))
    resource_type: Mapped[str] = mapped_column(String(64))
    endpoint: Mapped[str] = mapped_column(String(2000))
    subscription_id: Mapped[str | None] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_subscription_secrets_connection", "connection", "resource_type"),)


class AuditRow(Base):
    """One write, by whom, from where: ids and counts only, never PHI."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str | None] = mapped_column(String(64))
    record_id: Mapped[str | None] = mapped_column(String(200))
    connection: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_audit_actor", "actor", "id"),
        Index("ix_audit_record", "record_id", "id"),
    )


class ContactRow(Base):
    """A care manager's contact that counts toward its month's minutes (one per encounter
    record; kept in step with the record by ``_reports.track_contact`` on every put/delete)."""

    __tablename__ = "contacts"

    encounter_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64))
    month: Mapped[str] = mapped_column(String(7))
    day: Mapped[str] = mapped_column(String(10))
    minutes: Mapped[float] = mapped_column(Float)
    care_manager_id: Mapped[str | None] = mapped_column(String(200))
    care_manager_name: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index("ix_contacts_month", "month", "patient_id"),)
