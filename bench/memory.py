"""Peak RSS of one push or one pull, each in a process of its own.

``python -m bench.memory push|pull|pull-bulk DATABASE_URL BASE_URL NAMESPACE`` runs the
bridge's push (or pull, or ``fhir-bridge pull --bulk`` in process) over a store loaded
beforehand and prints one JSON line: peak RSS, seconds, counts.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fhir_bridge.config import CONFIG_ENV
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store

from .pull import bridge_pull, pulled
from .push import CONNECTION, NOW, bridge_push, written

FHIR_BRIDGE = Path(sys.executable).parent / "fhir-bridge"


def bulk_available() -> bool:
    """Whether this fhir-bridge has ``pull --bulk`` (FHIR Bulk Data ``$export``)."""
    done = subprocess.run(
        [str(FHIR_BRIDGE), "pull", "--help"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    return done.returncode == 0 and "--bulk" in done.stdout


def _cli_pull_bulk(database_url: str, base_url: str, namespace: str) -> int:
    """``fhir-bridge pull --bulk`` in this process, as a user runs it (a config file naming
    the store and the connection); the links the store then holds."""
    from fhir_bridge.cli import app  # noqa: PLC0415 - only this mode needs the CLI

    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as work:
        config = Path(work) / "fhir-bridge.toml"
        config.write_text(
            f'database_url = "{database_url}"\nnamespace = "{namespace}"\n\n'
            f'[connections.{CONNECTION}]\nbase_url = "{base_url}"\nenrol = "all"\n'
        )
        os.environ[CONFIG_ENV] = str(config)
        try:
            app(["pull", "--connection", CONNECTION, "--bulk"], standalone_mode=False)
        except SystemExit as exc:
            if exc.code:
                raise RuntimeError(f"fhir-bridge pull --bulk exited with {exc.code}") from None
    return -1  # the CLI prints its counts; the caller counts links afterwards


def _links(database_url: str) -> int:
    store = Store(database_url)
    try:
        return len(store.links.of_connection(CONNECTION))
    finally:
        store.close()


def peak_rss_mb() -> float:
    """This process's peak resident set size.

    ``VmHWM`` where Linux has it: unlike ``ru_maxrss``, which a child inherits from the parent
    it was forked from (so a benchmark holding a big panel would inflate it), it starts anew
    at ``exec``.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def measure(what: str, database_url: str, base_url: str, namespace: str) -> dict[str, Any]:
    """Run the push or pull in a child process and read what it printed."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory", what, database_url, base_url, namespace],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.memory {what} failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str]) -> None:
    what, database_url, base_url, namespace = argv
    ctx = MappingContext(namespace=namespace, now=NOW)
    baseline = peak_rss_mb()
    started = time.perf_counter()
    if what == "push":
        count = written(asyncio.run(bridge_push(database_url, base_url, ctx)))
    elif what == "pull":
        count = pulled(asyncio.run(bridge_pull(database_url, base_url, ctx)))
    elif what == "pull-bulk":
        count = _cli_pull_bulk(database_url, base_url, namespace)
    else:
        raise SystemExit(f"usage: python -m bench.memory push|pull|pull-bulk ...; not {what!r}")
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()  # before anything else is read
    print(
        json.dumps(
            {
                "what": what,
                "peak_rss_mb": round(peak, 1),
                "baseline_rss_mb": round(baseline, 1),
                "seconds": round(seconds, 3),
                "resources": count,
                "links_after": _links(database_url) if what.startswith("pull") else None,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
