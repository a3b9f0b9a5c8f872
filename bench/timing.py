"""Repetitions and their summary: warm-up discarded, median with min and max."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Figure:
    """One contender's repetitions: seconds and items (resources) per repetition."""

    name: str
    seconds: list[float] = field(default_factory=list)
    items: list[int] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def add(self, seconds: float, items: int) -> None:
        self.seconds.append(seconds)
        self.items.append(items)

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
            **self.notes,
        }


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    items = fn()
    return time.perf_counter() - started, items


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    rank = max(1, round(p / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]
