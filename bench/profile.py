"""Where the bridge's push and pull spend their time (pyinstrument).

``python -m bench.profile --fhir-url URL [--patients N]`` pushes a generated panel into the
server under a fresh namespace (after one warm-up push of a small panel), then pulls it back
after server-side edits, profiling the push and the incremental pull; the reports go to
``bench/results/profile-push.txt`` and ``profile-pull.txt``. With ``--latency-ms MS`` only the
push is profiled, through the network part's link adding MS per round trip
(``profile-push-MSms.txt``), with the process's CPU seconds beside the wall clock's.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pyinstrument import Profiler

from fhir_bridge.mappers import MappingContext

from . import network, pull, push
from .panel import Panel, generate

RESULTS = Path(__file__).parent / "results"


def _ctx() -> MappingContext:
    return MappingContext(
        f"https://bench.fhir-bridge.example/{uuid.uuid4().hex[:12]}", datetime.now(UTC)
    )


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.profile")
    p.add_argument("--fhir-url", required=True)
    p.add_argument("--patients", type=int, default=200)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--latency-ms", type=float, help="profile the push only, over this link")
    args = p.parse_args()
    base_url = args.fhir_url.rstrip("/")
    work = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    args.out.mkdir(parents=True, exist_ok=True)
    if args.latency_ms is not None:
        with network.link(base_url, args.latency_ms) as via:
            print(_profile_push(via, work, args.patients, args.out, f"-{args.latency_ms:g}ms")[0])
        return

    report, ctx = _profile_push(base_url, work, args.patients, args.out)
    print(report)
    url = f"sqlite:///{work / 'bridge.db'}"

    asyncio.run(pull.bridge_pull(url, base_url, ctx))  # the first pull sets the watermarks
    asyncio.run(pull.edit_on_server(base_url, url, 0.05))
    profiler = Profiler(async_mode="enabled")
    with profiler:
        asyncio.run(pull.bridge_pull(url, base_url, ctx))
    (args.out / "profile-pull.txt").write_text(profiler.output_text(unicode=False, color=False))
    print(args.out / "profile-pull.txt")


def _profile_push(
    base_url: str, work: Path, patients: int, out: Path, suffix: str = ""
) -> tuple[Path, MappingContext]:
    """A warm-up push of 20 patients, a push of ``patients`` timed (wall and process CPU
    seconds, no profiler), then the same panel pushed again under a fresh namespace into
    ``work/bridge.db``, profiled: the report's path, and the profiled push's namespace. Each
    store is loaded before its push's clock starts."""
    _push(base_url, _loaded(work / "warm.db", generate(20, seed=3)), _ctx())
    panel = generate(patients)
    timed = _loaded(work / "timed.db", panel)
    wall, cpu = time.perf_counter(), time.process_time()
    _push(base_url, timed, _ctx())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    profiled, ctx = _loaded(work / "bridge.db", panel), _ctx()
    profiler = Profiler(async_mode="enabled")
    with profiler:
        _push(base_url, profiled, ctx)
    report = out / f"profile-push{suffix}.txt"
    report.write_text(
        f"The same push without the profiler: {wall:.2f} s, of which the process's CPU "
        f"{cpu:.2f} s\n" + profiler.output_text(unicode=False, color=False)
    )
    return report, ctx


def _loaded(database: Path, panel: Panel) -> str:
    """A new store at ``database`` holding ``panel``: its URL."""
    url = f"sqlite:///{database}"
    push.load(url, panel.records())
    return url


def _push(base_url: str, url: str, ctx: MappingContext) -> None:
    asyncio.run(push.bridge_push(url, base_url, ctx))


if __name__ == "__main__":
    main()
