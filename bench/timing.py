"""Repetitions and their summary: warm-up discarded, median with min and max; the CPU each
repetition took, in this process (the client) and in the FHIR server's."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil


@dataclass(frozen=True)
class Cpu:
    """CPU seconds one repetition took: this process (every thread), the server's process."""

    client: float
    server: float | None = None


@dataclass
class Figure:
    """One contender's repetitions: seconds and items (resources) per repetition."""

    name: str
    seconds: list[float] = field(default_factory=list)
    items: list[int] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    cpu: list[Cpu] = field(default_factory=list)

    def add(self, seconds: float, items: int, cpu: Cpu | None = None) -> None:
        self.seconds.append(seconds)
        self.items.append(items)
        if cpu is not None:
            self.cpu.append(cpu)

    def summary(self) -> dict[str, Any]:
        if not self.seconds:
            return {"name": self.name, "repetitions": 0, **self.notes}
        rates = [n / s if s > 0 else 0.0 for n, s in zip(self.items, self.seconds, strict=True)]
        return {
            "name": self.name,
            "repetitions": len(self.seconds),
            "items": int(statistics.median(self.items)),
            "seconds": {
                "median": round(statistics.median(self.seconds), 4),
                "min": round(min(self.seconds), 4),
                "max": round(max(self.seconds), 4),
                "all": [round(s, 4) for s in self.seconds],
            },
            "per_second": {
                "median": round(statistics.median(rates), 1),
                "min": round(min(rates), 1),
                "max": round(max(rates), 1),
            },
            **self._cpu(),
            **self.notes,
        }

    def _cpu(self) -> dict[str, Any]:
        if not self.cpu:
            return {}
        server = [c.server for c in self.cpu if c.server is not None]
        return {
            "cpu_seconds": {
                "client": round(statistics.median(c.client for c in self.cpu), 2),
                "server": round(statistics.median(server), 2) if server else None,
            }
        }


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    items = fn()
    return time.perf_counter() - started, items


def timed_cpu(fn: Callable[[], int], server_pid: int | None) -> tuple[float, int, Cpu]:
    """As :func:`timed`, with the CPU seconds this process and the server's (when its process
    is known and on this machine) spent meanwhile."""
    server = _process(server_pid)
    server_before = _cpu_of(server)
    client_before = time.process_time()
    seconds, items = timed(fn)
    client = time.process_time() - client_before
    server_after = _cpu_of(server)
    spent = None if server_before is None or server_after is None else server_after - server_before
    return seconds, items, Cpu(round(client, 3), None if spent is None else round(spent, 3))


def _process(pid: int | None) -> psutil.Process | None:
    if pid is None:
        return None
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def _cpu_of(process: psutil.Process | None) -> float | None:
    if process is None:
        return None
    try:
        times = process.cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    rank = max(1, round(p / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]
