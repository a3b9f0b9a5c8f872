"""What the fleet of workers is doing: for ``fhir-bridge status``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from fhir_bridge.store import Store

ALIVE_WITHIN = timedelta(seconds=60)


def fleet_status(
    store: Store,
    now: datetime,
    alive_within: timedelta = ALIVE_WITHIN,
    *,
    patient_modes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Workers alive (heartbeat within ``alive_within``) with their claims, the outbox per
    connection (due, scheduled, done, dead, held), patients enrolled per connection,
    throttled connections, how many claims belong to workers not alive (the maintenance step
    frees them), and per connection the patient mode in force (``patient_modes``: the
    configured connections') with how many patients are matched and held."""
    leases = store.leases.current()
    alive = []
    alive_ids = set()
    for w in store.workers.known():
        if w.stopped_at is not None or now - w.heartbeat_at > alive_within:
            continue
        alive_ids.add(w.id)
        alive.append(
            {
                "id": w.id,
                "host": w.host,
                "pid": w.pid,
                "heartbeat_age_s": round((now - w.heartbeat_at).total_seconds(), 1),
                "claims": [
                    {"connection": x.connection, "scope": x.scope, "key": x.key}
                    for x in leases
                    if x.holder == w.id and x.expires_at > now
                ],
            }
        )
    queue = {name: counts.as_dict() for name, counts in store.outbox.by_connection(now).items()}
    throttled = {}
    for name in queue:
        until = store.throttles.until(name, now)
        if until is not None:
            throttled[name] = until.isoformat()
    orphaned = sum(1 for x in leases if x.holder not in alive_ids)
    counts = store.matches.counts()
    patients = {
        name: {"mode": mode, **counts.get(name, {"matched": 0, "held": 0})}
        for name, mode in (patient_modes or {}).items()
    }
    for name, per in counts.items():
        patients.setdefault(name, {"mode": "unknown", **per})
    return {
        "alive": alive,
        "queue": queue,
        "enrolled": store.enrolments.counts(),
        "throttled": throttled,
        "orphaned_claims": orphaned,
        "patients": patients,
    }
