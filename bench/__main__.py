"""``python -m bench``: run the benchmarks and write bench/results/ (JSON, markdown, PNG)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from fhir_bridge import sandbox

from .report import write
from .run import Bench, Config

RESULTS = Path(__file__).parent / "results"
ONCE_PARTS = ("memory", "bulk")  # measured once per size, whatever --repetitions says
PANEL_PARTS = ("mapping", "push", "pull", "latency")  # the others have sizes of their own
PARTS = ("mapping", "push", "pull", "latency", "network", "memory", "bulk", "scaling", "workers")
POSTGRES_ENV = ("FHIR_BRIDGE_BENCH_POSTGRES_URL", "FHIR_BRIDGE_TEST_POSTGRES_URL")


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, not {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, not {text!r}")
    return sizes


def _latencies(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated milliseconds, not {text!r}"
        ) from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected milliseconds >= 0, not {text!r}")
    return values


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "--port",
        type=int,
        default=sandbox.DEFAULT_PORT,
        help="port of the local HAPI sandbox (started, or reset when running)",
    )
    p.add_argument("--fhir-url", help="benchmark another server instead (nothing is deleted)")
    p.add_argument("--patients", type=int, default=500)
    p.add_argument("--repetitions", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument(
        "--curve",
        "--memory-sizes",
        dest="curve",
        type=_sizes,
        default=(100, 1000, 10_000),
        help="patients at each point of the scaling curve: push and pull time and peak RSS, "
        "each in a process of its own (the memory part)",
    )
    p.add_argument(
        "--latency-ms",
        type=_latencies,
        default=(0.0, 25.0),
        help="round trips added by the network proxy for the network part, comma-separated",
    )
    p.add_argument("--network-patients", type=int, default=30)
    p.add_argument(
        "--bulk-patients",
        type=int,
        default=10_000,
        help="panel of the bulk vs paged first pull (runs when `pull --bulk` exists)",
    )
    p.add_argument("--latency-changes", type=int, default=50)
    p.add_argument("--scaling-patients", type=int, default=100)
    p.add_argument(
        "--only",
        type=lambda s: tuple(s.split(",")),
        default=None,
        help="comma-separated parts: " + ",".join(PARTS),
    )
    p.add_argument(
        "--postgres-url",
        default=next((os.environ[n] for n in POSTGRES_ENV if os.environ.get(n)), None),
        help="PostgreSQL server for the workers part (default: $"
        + " or $".join(POSTGRES_ENV)
        + "); each measurement makes a fresh database there",
    )
    p.add_argument("--worker-counts", type=_sizes, default=(1, 2, 4))
    p.add_argument("--smoke", action="store_true", help="a tiny panel once: proves the code runs")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument(
        "--merge",
        type=Path,
        action="append",
        default=[],
        help="a results.json of an earlier run: parts this run skipped are taken from it "
        "(marked as measured separately); repeatable, the first file holding a part gives it",
    )
    return p.parse_args(argv)


def config(args: argparse.Namespace, base_url: str, *, expunge: bool) -> Config:
    if args.smoke:
        c = Config(
            base_url,
            patients=5,
            repetitions=1,
            warmup=0,
            memory_sizes=(1, 2, 4),
            latency_changes=3,
            latencies=(0.0, 25.0),
            network_patients=2,
            bulk_patients=4,
            scaling_patients=3,
            concurrencies=(1, 2),
            bundle_sizes=(10, 50),
            bridge_concurrencies=(1, 2),
            warmup_patients=2,
            expunge=expunge,
            strict=True,
            postgres_url=args.postgres_url,
            worker_counts=(1, 2),
            worker_patients=4,
            worker_goals=1,
        )
    else:
        c = Config(
            base_url,
            patients=args.patients,
            repetitions=args.repetitions,
            warmup=args.warmup,
            memory_sizes=args.curve,
            latency_changes=args.latency_changes,
            latencies=args.latency_ms,
            network_patients=args.network_patients,
            bulk_patients=args.bulk_patients,
            scaling_patients=args.scaling_patients,
            expunge=expunge,
            postgres_url=args.postgres_url,
            worker_counts=args.worker_counts,
        )
    if args.only:
        c.parts = args.only
    elif args.postgres_url is None:  # the workers part needs PostgreSQL: say so, skip it
        print("no PostgreSQL server given (--postgres-url): the workers part is skipped")
        c.parts = tuple(p for p in c.parts if p != "workers")
    return c


def merge(results: dict[str, Any], earlier: dict[str, Any]) -> None:
    """Parts measured in an earlier run (e.g. memory, which CPU noise does not move); a part
    that run had itself taken from another keeps that one's account."""
    for part in PARTS:
        if part not in results and part in earlier:
            results[part] = earlier[part]
            results.setdefault("measured_separately", {})[part] = (
                earlier.get("measured_separately") or {}
            ).get(part) or {
                "when": earlier["machine"]["when"],
                "load_average_start": earlier["machine"]["load_average_start"],
                "seconds": (earlier.get("part_seconds") or {}).get(part),
                "patients": (earlier.get("panel") or {}).get("patients")
                if part in PANEL_PARTS
                else None,
                "repetitions": (earlier.get("config") or {}).get("repetitions")
                if part not in ONCE_PARTS
                else None,
            }


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    started_here = False
    if args.fhir_url:
        base_url, expunge = args.fhir_url.rstrip("/"), False
    else:
        before = sandbox.status(args.port)
        progress = lambda line: print(line, file=sys.stderr)  # noqa: E731
        if before.running:
            print(f"resetting the sandbox on port {args.port}", file=sys.stderr)
            base_url = sandbox.reset(args.port, progress=progress).base_url
        else:
            base_url = sandbox.start(args.port, progress=progress).base_url
            started_here = True
        expunge = True
    c = config(args, base_url, expunge=expunge)
    if not args.fhir_url:  # the sandbox's process: its CPU seconds are read per push
        c.server_pid = sandbox.status(args.port).pid
    try:
        results = Bench(c).run()
    finally:
        if started_here:
            sandbox.stop(args.port)
    for earlier in args.merge:
        merge(results, json.loads(earlier.read_text()))
    for path in write(results, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
