"""Persistence: SQLAlchemy (SQLite by default), schema managed by Alembic.

:class:`Store` owns the database; its repositories (``store.records``, ``store.outbox``,
``store.links``, ...) hand back the frozen dataclasses exported here.
"""

from ._api_keys import ApiKey, Grant
from ._audit import AuditEvent
from ._changes import Change
from ._clock import utc
from ._conflicts import Conflict, NewConflict
from ._deletions import Deleted, Gone
from ._enrolments import Enrolled, Enrolment, NewEnrolment, Unenrolled
from ._handoffs import Handoff, HandoffSummary
from ._leases import Claim, Lease
from ._links import Link, LinkHead
from ._matches import MatchState, PatientMatch
from ._outbox import OutboxEntry, QueueDepth, QueueSchedule
from ._pushed import Closing, Written
from ._records import PutResult, content_hash
from ._refusals import Refusal, id_free
from ._reports import CareManagerMinutes, MinutesReport, PatientMinutes
from ._routing import Organization, Route, Routing, Share, as_shared, for_fulfiller
from ._runs import LogEntry, Run
from ._slots import RequestSlots, Slot
from ._store import Store
from ._subscription_secrets import SubscriptionSecret
from ._tables import OutboxStatus
from ._workers import Worker

__all__ = [
    "ApiKey",
    "AuditEvent",
    "CareManagerMinutes",
    "Change",
    "Claim",
    "Closing",
    "Conflict",
    "Deleted",
    "Enrolled",
    "Enrolment",
    "Gone",
    "Grant",
    "Handoff",
    "HandoffSummary",
    "Lease",
    "Link",
    "LinkHead",
    "LogEntry",
    "MatchState",
    "MinutesReport",
    "NewConflict",
    "NewEnrolment",
    "Organization",
    "OutboxEntry",
    "OutboxStatus",
    "PatientMatch",
    "PatientMinutes",
    "PutResult",
    "QueueDepth",
    "QueueSchedule",
    "Refusal",
    "RequestSlots",
    "Route",
    "Routing",
    "Run",
    "Share",
    "Slot",
    "Store",
    "SubscriptionSecret",
    "Unenrolled",
    "Worker",
    "Written",
    "as_shared",
    "content_hash",
    "for_fulfiller",
    "id_free",
    "utc",
]
