"""Sync with EHR FHIR servers: push (outbox -> server), pull (server -> records), merge."""

from ._bulk import EXPORTED_TYPES, BulkPuller
from ._clients import KeptClients
from ._connection import Connection, resolve_connection, routing_of
from ._discharges import open_due_items
from ._enrolment import check_connection, enrol_patient, loaded_enrolments, unenrol_patient
from ._held import accept_match, retry_match
from ._merge import FieldConflict, Merge, three_way
from ._notifications import Notifications
from ._pull import PULLED_TYPES, Puller
from ._push import Pusher
from ._resolve import TAKES, resolve_conflict
from ._retry import RetrySchedule
from ._runs import bulk_pull_connection, pull_connection, push_connection
from ._status import fleet_status, server_limits
from ._subscriptions import ROTATION_GRACE, rotate_secrets, subscribe, unsubscribe
from ._summary import PullSummary, PushSummary
from ._transitions import (
    CONTACT_BUSINESS_DAYS,
    VISIT_DAYS_HIGH,
    VISIT_DAYS_MODERATE,
    DueItem,
    due_items,
    is_transitional,
    windows,
)
from ._worker import Worker

__all__ = [
    "CONTACT_BUSINESS_DAYS",
    "EXPORTED_TYPES",
    "PULLED_TYPES",
    "ROTATION_GRACE",
    "TAKES",
    "VISIT_DAYS_HIGH",
    "VISIT_DAYS_MODERATE",
    "BulkPuller",
    "Connection",
    "DueItem",
    "FieldConflict",
    "KeptClients",
    "Merge",
    "Notifications",
    "PullSummary",
    "Puller",
    "PushSummary",
    "Pusher",
    "RetrySchedule",
    "Worker",
    "accept_match",
    "bulk_pull_connection",
    "check_connection",
    "due_items",
    "enrol_patient",
    "fleet_status",
    "is_transitional",
    "loaded_enrolments",
    "open_due_items",
    "pull_connection",
    "push_connection",
    "resolve_conflict",
    "resolve_connection",
    "retry_match",
    "rotate_secrets",
    "routing_of",
    "server_limits",
    "subscribe",
    "three_way",
    "unenrol_patient",
    "unsubscribe",
    "windows",
]
