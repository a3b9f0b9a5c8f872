"""The worker's part of the audit trail: one event per push or pull that changed something.

The actor is ``worker:<id>``, the source this host; ``detail`` holds the run's counts. A cycle
that found nothing to do is not recorded (the worker looks every few seconds).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from datetime import UTC, datetime

from fhir_bridge.store import AuditEvent, Store

log = logging.getLogger("fhir_bridge.worker")

# the counts that say a run wrote something, here or on the EHR
_WRITES = ("created", "updated", "new", "deleted", "conflicts", "failed", "dead_lettered")


def record_run(
    store: Store, worker_id: str, action: str, connection: str, counts: Mapping[str, int]
) -> None:
    """Record a worker's push or pull when it changed something; never raises."""
    if not any(counts.get(name) for name in _WRITES):
        return
    failed = counts.get("failed", 0) or counts.get("dead_lettered", 0)
    event = AuditEvent(
        actor=f"worker:{worker_id}",
        action=action,
        at=datetime.now(UTC),
        connection=connection,
        source=socket.gethostname(),
        outcome="failed" if failed else "ok",
        detail={k: v for k, v in counts.items() if v},
    )
    try:
        store.audit.add(event)
    except Exception:  # the run is done; the trail missing one event must not stop the worker
        log.warning("audit event not recorded", extra={"action": "audit.add"})
