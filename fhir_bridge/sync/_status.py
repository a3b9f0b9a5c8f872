"""What the fleet of workers is doing: for ``fhir-bridge status``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from fhir_bridge.store import Store

from ._limits import describe

ALIVE_WITHIN = timedelta(seconds=60)


def fleet_status(
    store: Store,
    now: datetime,
    alive_within: timedelta = ALIVE_WITHIN,
    *,
    patient_modes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Workers alive (heartbeat within ``alive_within``) with their claims, the outbox per
    connection (due, scheduled, done, dead, blocked, held), patients enrolled per connection,
    throttled connections, how many claims belong to workers not alive (the maintenance step
    frees them), per connection what its server does not take (:func:`server_limits`), and
    the patient mode in force (``patient_modes``: the configured connections') with how many
    patients are matched and held."""
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
        "limits": server_limits(store),
        "patients": patients,
    }


def server_limits(store: Store, connection: str | None = None) -> dict[str, dict[str, Any]]:
    """Per connection: each resource type not sent and why (``not_sent``: declared read-only
    by the CapabilityStatement, or refused at run time with a status on a date; ``waiting``:
    outbox entries blocked on it), the Bundle modes the server refused (``refused_modes``),
    and the other interactions of a type it refused (``refused_interactions``: a conditional
    update, then push searches first; ``search-_lastUpdated``, then pull reads per patient).
    Connections with nothing refused are left out."""
    blocked = store.outbox.blocked(connection)
    out: dict[str, dict[str, Any]] = {}
    for refusal in store.refusals.of(connection):
        per = out.setdefault(
            refusal.connection, {"not_sent": [], "refused_modes": [], "refused_interactions": []}
        )
        item: dict[str, Any] = {
            "source": refusal.source,
            "status": refusal.status,
            "since": refusal.refused_at.isoformat(),
            "reason": describe(refusal),
            "said": refusal.said,
        }
        if refusal.resource_type is None:
            per["refused_modes"].append({"mode": refusal.what, **item})
        elif refusal.interaction != "write":
            if refusal.interaction == "delete":  # deletions of the type wait on it
                item["waiting"] = blocked.get(refusal.connection, {}).get(refusal.what, 0)
            per["refused_interactions"].append(
                {"type": refusal.resource_type, "interaction": refusal.interaction, **item}
            )
        else:
            waiting = blocked.get(refusal.connection, {}).get(refusal.resource_type, 0)
            per["not_sent"].append({"type": refusal.resource_type, "waiting": waiting, **item})
    return out
