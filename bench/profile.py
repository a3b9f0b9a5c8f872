"""Where the bridge's push and pull spend their time (pyinstrument).

``python -m bench.profile --fhir-url URL [--patients N]`` pushes a generated panel into the
server under a fresh namespace (after one warm-up push of a small panel), then pulls it back
after server-side edits, profiling the push and the incremental pull; the reports go to
``bench/results/profile-push.txt`` and ``profile-pull.txt``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pyinstrument import Profiler

from fhir_bridge.mappers import MappingContext

from . import pull, push
from .panel import generate

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
    args = p.parse_args()
    base_url = args.fhir_url.rstrip("/")
    work = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    args.out.mkdir(parents=True, exist_ok=True)

    warm = f"sqlite:///{work / 'warm.db'}"
    push.load(warm, generate(20, seed=3).records())
    asyncio.run(push.bridge_push(warm, base_url, _ctx()))

    ctx = _ctx()
    url = f"sqlite:///{work / 'bridge.db'}"
    push.load(url, generate(args.patients).records())
    profiler = Profiler(async_mode="enabled")
    with profiler:
        asyncio.run(push.bridge_push(url, base_url, ctx))
    (args.out / "profile-push.txt").write_text(profiler.output_text(unicode=False, color=False))

    asyncio.run(pull.bridge_pull(url, base_url, ctx))  # the first pull sets the watermarks
    asyncio.run(pull.edit_on_server(base_url, url, 0.05))
    profiler = Profiler(async_mode="enabled")
    with profiler:
        asyncio.run(pull.bridge_pull(url, base_url, ctx))
    (args.out / "profile-pull.txt").write_text(profiler.output_text(unicode=False, color=False))
    print(args.out / "profile-push.txt")
    print(args.out / "profile-pull.txt")


if __name__ == "__main__":
    main()
