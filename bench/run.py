"""The whole benchmark: one run, one machine, one server.

Every push starts on an emptied server (``$expunge`` of everything, the JVM kept warm; the
run itself begins with ``fhir-bridge sandbox reset`` or a fresh start). In smoke mode (a
shared test server) nothing is deleted: each push writes under a namespace of its own, so
it still creates every resource.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import PULLED_TYPES
from tests.integration.scaling import measure as measure_workers  # the scale-out tests' fleet

from . import latency, mapping, memory, network, pull, push
from .machine import describe, other_processes_busy
from .panel import Panel, changed, generate
from .prepared import prepare
from .timing import Cpu, Figure, percentile, timed, timed_cpu

FHIR_JSON = "application/fhir+json"


class Skipped(Exception):  # noqa: N818 - a part skipped, not an error
    """A part this fhir-bridge cannot run (a feature it does not have yet)."""


@dataclass
class Config:
    base_url: str
    patients: int = 500
    repetitions: int = 3
    warmup: int = 1
    # the push warm-up round's panel (None: the measured one's size; a smaller one left the
    # first full-size push after it, always the bridge's, paying for the server's first growth)
    warmup_patients: int | None = None
    memory_sizes: tuple[int, ...] = (100, 1000, 10_000)  # the scaling curve (time, peak RSS)
    latency_changes: int = 50
    latencies: tuple[float, ...] = (0.0, 25.0)  # round trips added for the network part, ms
    network_patients: int = 30
    bulk_patients: int = 10_000  # the bulk vs paged initial pull, when `pull --bulk` exists
    scaling_patients: int = 100
    concurrencies: tuple[int, ...] = (1, 2, 4, 8)
    bridge_concurrencies: tuple[int, ...] = (1, 8)  # its patients go one at a time anyway
    bundle_sizes: tuple[int, ...] = (10, 50, 100)
    concurrency: int = 8  # the bridge's default max_in_flight
    bundle_size: int = 50  # the bridge's default bundle_size
    expunge: bool = True  # False: a fresh namespace per push instead (shared servers)
    strict: bool = False  # True: a failing part fails the run (the smoke test)
    parts: tuple[str, ...] = (
        "mapping",
        "push",
        "pull",
        "latency",
        "network",
        "memory",
        "bulk",
        "scaling",
        "workers",
    )
    postgres_url: str | None = None  # a PostgreSQL server for the workers part
    server_pid: int | None = None  # the FHIR server's process, for its CPU seconds per push
    worker_counts: tuple[int, ...] = (1, 2, 4)
    worker_patients: int = 200  # each with worker_goals goals: 1,000 resources
    worker_goals: int = 4
    work_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-")))
    log: Callable[[str], None] = print


class Bench:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.namespace = self._namespace()
        self.databases = 0
        self.pushed: dict[int, tuple[str, MappingContext]] = {}  # pushed stores, by patients
        self.failed: dict[str, str] = {}
        self.skipped: dict[str, str] = {}
        self.seconds: dict[str, float] = {}

    # ------------------------------------------------------------------ server state, stores

    def _namespace(self) -> str:
        return f"https://bench.fhir-bridge.example/{uuid.uuid4().hex[:12]}"

    def fresh(self) -> MappingContext:
        """An empty server as far as our identifiers go: emptied (where allowed), and a new
        namespace either way, so that nothing left from before (a Subscription the server
        still matches for a while after its deletion) concerns the next run."""
        self.namespace = self._namespace()
        if self.config.expunge:
            response = httpx.post(
                f"{self.config.base_url}/$expunge",
                json={
                    "resourceType": "Parameters",
                    "parameter": [{"name": "expungeEverything", "valueBoolean": True}],
                },
                headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON},
                timeout=600.0,
            )
            response.raise_for_status()
        return MappingContext(namespace=self.namespace, now=push.NOW)

    def database(self) -> tuple[str, Path]:
        self.databases += 1
        path = self.config.work_dir / f"store-{self.databases}.db"
        return f"sqlite:///{path}", path

    def reps(self) -> range:
        return range(self.config.warmup + self.config.repetitions)

    def measured(self, rep: int) -> bool:
        return rep >= self.config.warmup

    # ------------------------------------------------------------------ 1. mapping

    def mapping(self, panel: Panel) -> dict[str, Any]:
        ctx = MappingContext(namespace=self.namespace, now=push.NOW)
        prepared = prepare(panel, ctx)
        out, back = Figure("internal -> FHIR (checked)"), Figure("FHIR -> internal")
        rendered = Figure("internal -> FHIR (not checked)")
        for rep in self.reps():
            count, seconds = mapping.to_fhir(panel, ctx)
            only, only_seconds = mapping.to_fhir(panel, ctx, check=False)
            read, read_seconds = mapping.from_fhir_per_patient(prepared, ctx)
            if self.measured(rep):
                out.add(seconds, count)
                rendered.add(only_seconds, only)
                back.add(read_seconds, read)
        return {
            "to_fhir": out.summary(),
            "rendered": rendered.summary(),
            "from_fhir": back.summary(),
        }

    # ------------------------------------------------------------------ 2. push

    def push(self, panel: Panel) -> dict[str, Any]:
        c = self.config
        figures = {
            "bridge": Figure("fhir-bridge push"),
            "fhirpy": Figure("fhirpy, one at a time"),
            "fhirpy_async": Figure(f"fhirpy async, {c.concurrency} in flight"),
            "raw": Figure(f"raw httpx transactions, {c.concurrency} in flight"),
        }
        load, again, five = (
            Figure("load"),
            Figure("push, nothing changed"),
            Figure("push, 5% changed"),
        )
        edited = list(changed(panel, 0.05))
        size = c.patients if c.warmup_patients is None else c.warmup_patients
        warm = generate(size, seed=4)  # warms the JVM, the caches and the server's storage
        warm_edited = list(changed(warm, 0.05))
        for rep in self.reps():
            keep = self.measured(rep)
            run_panel, run_edited = (panel, edited) if keep else (warm, warm_edited)
            for name, figure in figures.items():
                ctx = self.fresh()
                c.log(f"push {name} rep {rep}{'' if keep else ' (warm-up)'}")
                if name == "bridge":
                    url, _ = self.database()
                    seconds, count = timed(partial(push.load, url, run_panel.records()))
                    if keep:
                        load.add(seconds, count)
                    seconds, count, cpu = self._timed(partial(self._bridge, url, ctx))
                    second = timed(partial(self._bridge, url, ctx, expect=0))
                    push.load(url, run_edited)
                    fifth = timed(partial(self._bridge, url, ctx))
                    if keep:
                        again.add(*second)
                        five.add(*fifth)
                else:
                    seconds, count, cpu = self._peer(name, run_panel, ctx, c.base_url)
                if keep:
                    figure.add(seconds, count, cpu)
        summaries = {k: f.summary() for k, f in figures.items()}
        rate = {k: s["per_second"]["median"] for k, s in summaries.items()}
        again_summary = again.summary()
        five_summary = five.summary()
        five_summary["changed_records"] = len(edited)
        return {
            "contenders": summaries,
            "load": load.summary(),
            "nothing_changed": again_summary,
            "five_percent_changed": five_summary,
            "ratios": {
                "bridge/fhirpy": _ratio(rate["bridge"], rate["fhirpy"]),
                "bridge/fhirpy_async": _ratio(rate["bridge"], rate["fhirpy_async"]),
                "bridge/raw": _ratio(rate["bridge"], rate["raw"]),
            },
        }

    def _timed(self, fn: Callable[[], int]) -> tuple[float, int, Cpu]:
        """``fn`` timed, with the CPU seconds it took here and at the server."""
        return timed_cpu(fn, self.config.server_pid)

    def _peer(
        self, name: str, panel: Panel, ctx: MappingContext, base_url: str
    ) -> tuple[float, int, Cpu]:
        """One push of ``panel`` by a peer (fhirpy, fhirpy async) or the raw ceiling, timed."""
        c = self.config
        if name == "fhirpy":
            prepared = prepare(panel, ctx)
            return self._timed(lambda: push.fhirpy_one_at_a_time(base_url, prepared))
        if name == "fhirpy_async":
            prepared = prepare(panel, ctx)
            return self._timed(
                lambda: asyncio.run(push.fhirpy_async(base_url, prepared, c.concurrency))
            )
        if name == "raw":
            directory, lanes = push.ceiling_bundles(prepare(panel, ctx), c.bundle_size)
            return self._timed(
                lambda: asyncio.run(
                    push.raw_transactions(base_url, directory, lanes, c.concurrency)
                )
            )
        raise ValueError(f"no push contender {name!r}")

    def _bridge(
        self,
        url: str,
        ctx: MappingContext,
        *,
        expect: int | None = None,
        bundle_size: int | None = None,
        concurrency: int | None = None,
        base_url: str | None = None,
    ) -> int:
        summary = asyncio.run(
            push.bridge_push(
                url,
                base_url or self.config.base_url,
                ctx,
                bundle_size=bundle_size or self.config.bundle_size,
                max_in_flight=concurrency or self.config.concurrency,
            )
        )
        if summary.failed or summary.dead_lettered:
            raise RuntimeError(f"bridge push failed: {summary.counts()}")
        if expect is not None and push.written(summary) != expect:
            raise RuntimeError(f"expected {expect} writes, got {summary.counts()}")
        return push.written(summary)

    # ------------------------------------------------------------------ 3. pull

    def pull(self, panel: Panel) -> tuple[dict[str, Any], Path, MappingContext]:
        c = self.config
        ctx = self.fresh()
        url, path = self.database()
        push.load(url, panel.records())
        self._bridge(url, ctx)
        first_seconds, first = timed(
            lambda: pull.pulled(asyncio.run(pull.bridge_pull(url, c.base_url, ctx)))
        )
        edits = asyncio.run(pull.edit_on_server(c.base_url, url, 0.05))
        plan = pull.searches(url)
        figures = {
            "bridge": Figure("fhir-bridge pull"),
            "fhirpy": Figure("fhirpy, same searches"),
            "raw": Figure("raw httpx paging"),
        }
        received = 0
        for rep in self.reps():
            for name, figure in figures.items():
                c.log(f"pull {name} rep {rep}")
                if name == "bridge":
                    copy = pull.copy_store(path, c.work_dir / f"pull-{rep}.db")
                    seconds, _ = timed(partial(_pulled, copy, c.base_url, ctx))
                    count = received  # the same responses: the raw count of what was sent
                elif name == "fhirpy":
                    seconds, count = timed(lambda: pull.fhirpy_searches(c.base_url, plan))
                else:
                    seconds, count = timed(lambda: asyncio.run(pull.raw_paging(c.base_url, plan)))
                    received = count
                if self.measured(rep):
                    figure.add(seconds, count)
        # the bridge ran first in each repetition: count what the server sent once known
        bridge = figures["bridge"]
        bridge.items = [received] * len(bridge.seconds)
        summaries = {k: f.summary() for k, f in figures.items()}
        rate = {k: s["per_second"]["median"] for k, s in summaries.items()}
        result = {
            "contenders": summaries,
            "first_pull": {
                "seconds": round(first_seconds, 3),
                "resources": first,
                "searches": "per patient and type (no watermark yet)",
            },
            "server_edits": edits,
            "searches": [{"path": s.path, "params": s.params} for s in plan],
            "ratios": {
                "bridge/fhirpy": _ratio(rate["bridge"], rate["fhirpy"]),
                "bridge/raw": _ratio(rate["bridge"], rate["raw"]),
            },
        }
        return result, path, ctx

    # ------------------------------------------------------------------ 3b. network

    def network(self) -> dict[str, Any]:
        """Every push contender through the same link with latency (the sandbox's network
        proxy, in its own process), at each of ``latencies`` round trips, on a smaller panel:
        one at a time over 25 ms costs a request per resource."""
        c = self.config
        panel = generate(c.network_patients, seed=13)
        ctx = MappingContext(namespace=self.namespace, now=push.NOW)
        rows = []
        for latency_ms in c.latencies:
            figures = {
                "bridge": Figure("fhir-bridge push"),
                "fhirpy": Figure("fhirpy, one at a time"),
                "fhirpy_async": Figure(f"fhirpy async, {c.concurrency} in flight"),
                "raw": Figure(f"raw httpx transactions, {c.concurrency} in flight"),
            }
            with network.link(c.base_url, latency_ms) as via:
                for rep in self.reps():
                    for name, figure in figures.items():
                        c.log(f"network {latency_ms:g} ms: push {name} rep {rep}")
                        ctx = self.fresh()  # emptied directly, not through the link
                        if name == "bridge":
                            url, _ = self.database()
                            push.load(url, panel.records())
                            result = self._timed(partial(self._bridge, url, ctx, base_url=via))
                        else:
                            result = self._peer(name, panel, ctx, via)
                        if self.measured(rep):
                            figure.add(*result)
            summaries = {k: f.summary() for k, f in figures.items()}
            rate = {k: s["per_second"]["median"] for k, s in summaries.items()}
            rows.append(
                {
                    "latency_ms": latency_ms,
                    "contenders": summaries,
                    "ratios": {
                        "bridge/fhirpy": _ratio(rate["bridge"], rate["fhirpy"]),
                        "bridge/fhirpy_async": _ratio(rate["bridge"], rate["fhirpy_async"]),
                        "bridge/raw": _ratio(rate["bridge"], rate["raw"]),
                    },
                }
            )
        return {
            "patients": c.network_patients,
            "resources": prepare(
                panel, MappingContext(namespace=self.namespace, now=push.NOW)
            ).resources,
            "link": "asyncio proxy, one round trip per exchange (each byte held half the "
            "latency each way), no bandwidth limit",
            "rows": rows,
        }

    # ------------------------------------------------------------------ 4. memory

    def memory(self) -> dict[str, Any]:
        c = self.config
        rows: list[dict[str, Any]] = []
        for size in c.memory_sizes:
            c.log(f"memory at {size} patients")
            panel = generate(size)
            ctx = self.fresh()
            url, path = self.database()
            started = datetime.now(UTC)
            push.load(url, panel.records())
            pushed = memory.measure("push", url, c.base_url, ctx.namespace)
            if size == c.bulk_patients and "bulk" in c.parts and memory.bulk_available():
                # the bulk part's starting point: pushed, before any pull
                self.pushed[size] = (pull.copy_store(path, c.work_dir / f"pushed-{size}.db"), ctx)
            _seed_watermarks(url, started)
            pulled = memory.measure("pull", url, c.base_url, ctx.namespace)
            rows.append({"patients": size, "push": pushed, "pull": pulled})
        out: dict[str, Any] = {"rows": rows}
        if len(rows) >= 2:
            small, large = _tenfold(rows)
            out["growth"] = {
                "from_patients": small["patients"],
                "to_patients": large["patients"],
                "patients": round(large["patients"] / small["patients"], 1),
                "push_rss": round(large["push"]["peak_rss_mb"] / small["push"]["peak_rss_mb"], 2),
                "pull_rss": round(large["pull"]["peak_rss_mb"] / small["pull"]["peak_rss_mb"], 2),
            }
        return out

    # ------------------------------------------------------------------ 4b. bulk

    def bulk(self) -> dict[str, Any]:
        """A first pull of a large panel (pushed, no watermark yet) by paged search and by
        ``fhir-bridge pull --bulk`` ($export, NDJSON), each in a process of its own over a copy
        of the same store: seconds and peak RSS. Skipped while ``pull --bulk`` does not exist."""
        c = self.config
        if not memory.bulk_available():
            raise Skipped("this fhir-bridge has no `pull --bulk`")
        if c.bulk_patients in self.pushed:  # the memory part pushed this panel already
            url, ctx = self.pushed[c.bulk_patients]
        else:
            c.log(f"bulk: pushing {c.bulk_patients} patients")
            ctx = self.fresh()
            url, _ = self.database()
            push.load(url, generate(c.bulk_patients).records())
            self._bridge(url, ctx)
        source = Path(url.removeprefix("sqlite:///"))
        rows = {}
        for what in ("pull", "pull-bulk"):
            c.log(f"bulk: {what} of {c.bulk_patients} patients")
            copy = pull.copy_store(source, c.work_dir / f"bulk-{what}.db")
            rows[what] = memory.measure(what, copy, c.base_url, ctx.namespace)
        paged, bulked = rows["pull"], rows["pull-bulk"]
        return {
            "patients": c.bulk_patients,
            "paged": paged,
            "bulk": bulked,
            "bulk_speedup": _ratio(paged["seconds"], bulked["seconds"]),
            "bulk_rss_ratio": _ratio(bulked["peak_rss_mb"], paged["peak_rss_mb"]),
        }

    # ------------------------------------------------------------------ 5. latency

    def latency(self, pulled_store: Path, ctx: MappingContext) -> dict[str, Any]:
        c = self.config
        url = pull.copy_store(pulled_store, c.work_dir / "latency.db")
        work = c.work_dir / "latency"
        work.mkdir(exist_ok=True)
        changes = latency.measure(url, c.base_url, ctx.namespace, work, c.latency_changes)
        seconds = [change.total for change in changes]
        out: dict[str, Any] = {
            "changes": len(seconds),
            **_spread(seconds),
            "all_ms": [round(s * 1000, 1) for s in seconds],
        }
        delivery = [x.delivery for x in changes if x.delivery is not None]
        applied = [x.applied for x in changes if x.applied is not None]
        if delivery:  # the server's part (match, queue, post) and the bridge's, apart
            out["delivery"] = {"changes": len(delivery), **_spread(delivery)}
            out["applied"] = {"changes": len(applied), **_spread(applied)}
        return out

    # ------------------------------------------------------------------ 6. scaling

    def scaling(self) -> dict[str, Any]:
        c = self.config
        panel = generate(c.scaling_patients, seed=11)
        cells = []
        for bundle_size in c.bundle_sizes:
            for concurrency in c.concurrencies:
                bridge, raw = Figure("bridge"), Figure("raw")
                with_bridge = concurrency in c.bridge_concurrencies
                for rep in range(c.repetitions):  # the server is warm by now
                    c.log(f"scaling bundle {bundle_size} concurrency {concurrency} rep {rep}")
                    if with_bridge:
                        ctx = self.fresh()
                        url, _ = self.database()
                        push.load(url, panel.records())
                        bridge.add(
                            *timed(
                                partial(
                                    self._bridge,
                                    url,
                                    ctx,
                                    bundle_size=bundle_size,
                                    concurrency=concurrency,
                                )
                            )
                        )
                    ctx = self.fresh()
                    directory, lanes = push.ceiling_bundles(prepare(panel, ctx), bundle_size)
                    r = timed(
                        partial(
                            _run, push.raw_transactions, c.base_url, directory, lanes, concurrency
                        )
                    )
                    raw.add(*r)
                cells.append(
                    {
                        "bundle_size": bundle_size,
                        "concurrency": concurrency,
                        "bridge": bridge.summary(),
                        "raw": raw.summary(),
                    }
                )
        return {"patients": c.scaling_patients, "cells": cells}

    # ------------------------------------------------------------------ 7. workers

    def workers(self) -> dict[str, Any]:
        """Push throughput of 1, 2, 4 ``fhir-bridge worker`` processes sharing one PostgreSQL
        store (outbox leases), from their start until the outbox is drained."""
        c = self.config
        if c.postgres_url is None:
            raise RuntimeError("needs a PostgreSQL server: --postgres-url")
        resources = c.worker_patients * (1 + c.worker_goals)
        rows = []
        for count in c.worker_counts:
            figure = Figure(f"{count} workers")
            for rep in self.reps():
                c.log(f"workers {count} rep {rep}{'' if self.measured(rep) else ' (warm-up)'}")
                self.fresh()
                seconds = measure_workers(
                    c.base_url, c.postgres_url, count, c.worker_patients, c.worker_goals
                )
                if self.measured(rep):
                    figure.add(seconds, resources)
            rows.append({"workers": count, **figure.summary()})
        return {"patients": c.worker_patients, "resources": resources, "rows": rows}

    # ------------------------------------------------------------------ all

    def _part(self, results: dict[str, Any], name: str, fn: Callable[[], Any]) -> None:
        """Run one part; a failure is recorded and the other parts still run."""
        c = self.config
        if name not in c.parts:
            return
        c.log(f"== {name}")
        begun = time.perf_counter()
        try:
            results[name] = fn()
        except Skipped as exc:  # not a failure: a feature this version does not have
            self.skipped[name] = str(exc)
            c.log(f"{name} skipped: {exc}")
        except Exception as exc:  # a benchmark run reports what failed and goes on
            if c.strict:
                raise
            self.failed[name] = f"{type(exc).__name__}: {exc}"[:500]
            c.log(f"{name} failed: {self.failed[name]}")
        finally:
            self.seconds[name] = round(time.perf_counter() - begun, 1)

    def run(self) -> dict[str, Any]:
        c = self.config
        started = time.perf_counter()
        results: dict[str, Any] = {
            "machine": describe(c.base_url),
            "config": {
                "patients": c.patients,
                "repetitions": c.repetitions,
                "warmup": c.warmup,
                "concurrency": c.concurrency,
                "bundle_size": c.bundle_size,
                "reset": "$expunge everything before each push"
                if c.expunge
                else "a fresh identifier namespace per push (shared server)",
            },
        }
        panel = generate(c.patients)
        ctx = MappingContext(namespace=self.namespace, now=push.NOW)
        results["panel"] = {
            "patients": panel.patients,
            "records": len(panel.records()),
            "resources": prepare(panel, ctx).resources,
        }
        part = partial(self._part, results)
        part("mapping", lambda: self.mapping(panel))
        part("push", lambda: self.push(panel))
        pulled: list[Any] = []  # the pulled store and its context, for the latency part

        def pull_part() -> dict[str, Any]:
            result, store_path, ctx = self.pull(panel)
            pulled.extend((store_path, ctx))
            return result

        if "latency" in c.parts and "pull" not in c.parts:
            c.parts = (*c.parts, "pull")
        part("pull", pull_part)
        if pulled:
            part("latency", lambda: self.latency(pulled[0], pulled[1]))
        part("network", self.network)
        part("memory", self.memory)
        part("bulk", self.bulk)
        part("scaling", self.scaling)
        part("workers", self.workers)
        if self.failed:
            results["failed_parts"] = self.failed
        if self.skipped:
            results["skipped_parts"] = self.skipped
        results["part_seconds"] = self.seconds
        if "mapping" in results and "push" in results and "bridge" in results["push"]["contenders"]:
            mp = results["mapping"]
            push_s = results["push"]["contenders"]["bridge"]["seconds"]["median"]
            mp["share_of_push"] = round(mp["to_fhir"]["seconds"]["median"] / push_s, 3)
            mp["rendering_share_of_push"] = round(mp["rendered"]["seconds"]["median"] / push_s, 3)
        results["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        results["machine"]["busy_processes_end"] = other_processes_busy()
        results["duration_seconds"] = round(time.perf_counter() - started, 1)
        shutil.rmtree(c.work_dir, ignore_errors=True)
        return results


def _seed_watermarks(database_url: str, since: datetime) -> None:
    """As if a pull had run just before the push: the next pull reads everything since."""
    store = Store(database_url)
    try:
        for resource_type in PULLED_TYPES:
            store.apply_pull(
                push.CONNECTION,
                resource_type,
                records=[],
                links=[],
                conflicts=[],
                watermark=since.isoformat().replace("+00:00", "Z"),
                now=since,
            )
    finally:
        store.close()


def _tenfold(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The largest pair of sizes ten times apart (1,000 and 10,000 of 100, 1,000, 10,000);
    the smallest and the largest when none are."""
    by_size = {row["patients"]: row for row in rows}
    pairs = [(n, n * 10) for n in sorted(by_size) if n * 10 in by_size]
    if pairs:
        small, large = pairs[-1]
        return by_size[small], by_size[large]
    return rows[0], rows[-1]


def _spread(seconds: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(seconds, 50) * 1000, 1),
        "p95_ms": round(percentile(seconds, 95) * 1000, 1),
        "min_ms": round(min(seconds) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
    }


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def _run(fn: Callable[..., Coroutine[Any, Any, int]], *args: Any) -> int:
    """``fn(*args)`` run to its end in a new event loop."""
    return asyncio.run(fn(*args))


def _pulled(database_url: str, base_url: str, ctx: MappingContext) -> int:
    """The bridge's pull into ``database_url``: how many resources it read."""
    return pull.pulled(asyncio.run(pull.bridge_pull(database_url, base_url, ctx)))
