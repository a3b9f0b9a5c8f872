"""Peak RSS of one push or one pull, each in a process of its own.

``python -m bench.memory push|pull DATABASE_URL BASE_URL NAMESPACE`` runs the bridge's push
(or pull) over a store loaded beforehand and prints one JSON line: peak RSS, seconds, counts.
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fhir_bridge.mappers import MappingContext

from .pull import bridge_pull, pulled
from .push import NOW, bridge_push, written


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
    else:
        raise SystemExit(f"usage: python -m bench.memory push|pull ...; not {what!r}")
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "what": what,
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "baseline_rss_mb": round(baseline, 1),
                "seconds": round(seconds, 3),
                "resources": count,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
