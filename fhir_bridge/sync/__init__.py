"""Sync with EHR FHIR servers: push (outbox -> server); pull and merge come next."""

from ._connection import Connection, resolve_connection
from ._push import Pusher, PushSummary

__all__ = ["Connection", "PushSummary", "Pusher", "resolve_connection"]
