"""Push throughput with 1, 2 and 4 workers on PostgreSQL, against a real FHIR server.

    python -m tests.integration.scaling --fhir-url http://127.0.0.1:8080/fhir \\
        --postgres-url postgresql+psycopg://postgres@127.0.0.1:55432/postgres

For each worker count: a fresh database and namespace, a panel of patients with goals put in
the outbox, the workers started together, and the time from their start until the outbox is
drained. Prints one row per count (resources per second, worker start-up included).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from fhir_bridge.store import Store
from tests.databases import fresh_postgres
from tests.integration.fleet import NOW, Fleet, drain, panel, worker_env, write_config


def measure(fhir_url: str, server: str, workers: int, patients: int, goals: int) -> float:
    """Seconds for ``workers`` workers to push the panel."""
    with fresh_postgres(server) as url, tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        namespace = f"https://bridge.test/{uuid.uuid4().hex[:10]}"
        write_config(tmp_path / "fhir-bridge.toml", {"hapi": fhir_url})
        store = Store(url)
        store.put_records(panel(patients, goals), ["hapi"], NOW)
        fleet = Fleet(
            tmp_path,
            worker_env(tmp_path, url, namespace),
            "--push-every",
            "0.5",
            "--pull-every",
            "0",
        )
        started = time.monotonic()
        try:
            for slot in range(workers):
                fleet.start(slot)
            depth = drain(store, "hapi", timeout=900)
            elapsed = time.monotonic() - started
        finally:
            fleet.stop()
            store.close()
        assert depth == {"done": patients * (1 + goals)}, depth
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fhir-url", required=True)
    parser.add_argument("--postgres-url", required=True)
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--goals", type=int, default=4)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    resources = args.patients * (1 + args.goals)
    print(f"{resources} resources ({args.patients} patients, {args.goals} goals each)")
    print("workers  seconds  resources/s")
    for count in (int(n) for n in args.workers.split(",")):
        seconds = measure(args.fhir_url, args.postgres_url, count, args.patients, args.goals)
        print(f"{count:7d}  {seconds:7.1f}  {resources / seconds:11.1f}")


if __name__ == "__main__":
    main()
