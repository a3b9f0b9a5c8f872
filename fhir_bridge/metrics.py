"""Prometheus metrics of this process: FHIR requests, sync runs, queue depth.

Each process (``serve``, ``worker``) exposes its own figures; ``/metrics`` of the HTTP service
adds the store's gauges (queue depth, dead letters, open conflicts), read at scrape time, so
they hold for every process sharing the database. Labels are connection names, methods,
resource types and outcomes: never record ids or anything about a patient.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from fhir_bridge.fhir import Observer, RequestEvent

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "fhir_bridge_fhir_requests",
    "HTTP requests sent to FHIR servers, by status class (error: no response)",
    ["connection", "method", "outcome"],
    registry=REGISTRY,
)
RETRIES = Counter(
    "fhir_bridge_fhir_retries",
    "Requests that were repeats of an earlier attempt",
    ["connection"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "fhir_bridge_fhir_request_seconds",
    "Time from sending a request to its response",
    ["connection"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
RUNS = Counter(
    "fhir_bridge_sync_runs",
    "Push and pull runs, by outcome (ok: nothing failed)",
    ["connection", "direction", "outcome"],
    registry=REGISTRY,
)
RUN_SECONDS = Histogram(
    "fhir_bridge_sync_run_seconds",
    "Duration of push and pull runs",
    ["connection", "direction"],
    buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0),
    registry=REGISTRY,
)
RESOURCES = Counter(
    "fhir_bridge_sync_resources",
    "What runs did, per resource or record (created, updated, unchanged, failed, ...)",
    ["connection", "direction", "result"],
    registry=REGISTRY,
)
QUEUE = Gauge(
    "fhir_bridge_outbox_entries",
    "Outbox entries by status (pending, done, dead), at scrape time",
    ["connection", "status"],
    registry=REGISTRY,
)
DEAD_LETTERS = Gauge(
    "fhir_bridge_dead_letters", "Records that failed permanently", registry=REGISTRY
)
CONFLICTS = Gauge("fhir_bridge_open_conflicts", "Conflicts waiting for a person", registry=REGISTRY)
NOTIFICATIONS = Counter(
    "fhir_bridge_notifications",
    "Subscription notifications accepted, by what became of them (pulled: started a pull of "
    "the type; coalesced: folded into a pull already waiting)",
    ["connection", "resource_type", "outcome"],
    registry=REGISTRY,
)


def request_observer(connection: str) -> Observer:
    """The FHIR client's observer for one connection."""

    def observe(event: RequestEvent) -> None:
        outcome = "error" if event.status == 0 else f"{event.status // 100}xx"
        REQUESTS.labels(connection, event.method, outcome).inc()
        if event.attempt > 1:
            RETRIES.labels(connection).inc()
        LATENCY.labels(connection).observe(event.seconds)

    return observe


def record_run(
    connection: str, direction: str, counts: dict[str, int], seconds: float, *, ok: bool
) -> None:
    RUNS.labels(connection, direction, "ok" if ok else "failed").inc()
    RUN_SECONDS.labels(connection, direction).observe(seconds)
    for result, count in counts.items():
        if count:
            RESOURCES.labels(connection, direction, result).inc(count)


def exposition() -> bytes:
    """The text format Prometheus scrapes."""
    return generate_latest(REGISTRY)
