"""Sync throughput over time, from the counts of recent sync runs, laid out as a bar chart.

Each run is counted in the time bucket it started in: resources written by pushes
(created + updated), records changed by pulls (new + updated + deleted), and failures
(failed, dead-lettered, not supported). The bucket width is the smallest of a fixed ladder
that lets the window of ``BUCKETS`` buckets reach back to the oldest run given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fhir_bridge.store import Run

BUCKETS = 24
WIDTHS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(days=1),
    timedelta(days=7),
)
_EPOCH = datetime(2000, 1, 3, tzinfo=UTC)  # a Monday, so week buckets start on Mondays
PUSHED = ("created", "updated")
PULLED = ("new", "updated", "deleted")
FAILED = ("failed", "dead_lettered", "not_supported")

# the drawing area of the chart, in SVG user units
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720.0, 200.0, 44.0, 24.0, 10.0


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime
    pushed: int = 0
    pulled: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.pushed + self.pulled + self.failed


@dataclass(frozen=True, slots=True)
class Segment:
    """One coloured part of a stacked bar: ``series`` is pushed, pulled or failed."""

    series: str
    y: float
    height: float


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    label: str  # the bar's tooltip
    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    text: str
    anchor: str  # SVG text-anchor: the first label starts at its bar, the last ends at its bar


@dataclass(frozen=True)
class Throughput:
    width: timedelta
    buckets: list[Bucket]

    @property
    def peak(self) -> int:
        return max((b.total for b in self.buckets), default=0)

    @property
    def width_text(self) -> str:
        return _span_text(self.width)

    @property
    def window_text(self) -> str:
        return _span_text(self.width * len(self.buckets))

    def bars(self) -> list[Bar]:
        """Stacked bars scaled to the peak (zero-height buckets draw nothing)."""
        step = (WIDTH - LEFT) / max(len(self.buckets), 1)
        scale = (HEIGHT - BOTTOM - TOP) / self.peak if self.peak else 0.0
        bars = []
        for i, b in enumerate(self.buckets):
            base = HEIGHT - BOTTOM
            segments = []
            for series, value in (("pushed", b.pushed), ("pulled", b.pulled), ("failed", b.failed)):
                if value:
                    height = value * scale
                    base -= height
                    segments.append(Segment(series, round(base, 1), round(height, 1)))
            label = (
                f"{_time_text(b.start, self.width)}: {b.pushed} pushed, "
                f"{b.pulled} pulled, {b.failed} failed"
            )
            bars.append(
                Bar(round(LEFT + i * step + 1, 1), round(step - 2, 1), label, tuple(segments))
            )
        return bars

    def ticks(self) -> list[Tick]:
        """Labels under the first, middle and last bucket."""
        if not self.buckets:
            return []
        step = (WIDTH - LEFT) / len(self.buckets)
        last = len(self.buckets) - 1
        ticks = []
        for i in sorted({0, last // 2, last}):
            text = _time_text(self.buckets[i].start, self.width)
            if i == 0:
                ticks.append(Tick(round(LEFT + 1, 1), text, "start"))
            elif i == last:
                ticks.append(Tick(round(WIDTH - 1, 1), text, "end"))
            else:
                ticks.append(Tick(round(LEFT + i * step + step / 2, 1), text, "middle"))
        return ticks


def throughput(runs: Iterable[Run], now: datetime) -> Throughput:
    """Bucket runs (by ``started_at``, ``direction``, ``counts``) into a window ending now."""
    runs = list(runs)
    oldest = min((r.started_at for r in runs), default=now)
    width = next((w for w in WIDTHS if now - oldest < w * (BUCKETS - 1)), WIDTHS[-1])
    last = _floor(now, width)
    first = last - width * (BUCKETS - 1)
    sums = [[0, 0, 0] for _ in range(BUCKETS)]
    for run in runs:
        started = run.started_at
        if started < first or started >= last + width:
            continue
        index = int((started - first) / width)
        counts = run.counts or {}
        push = run.direction == "push"
        sums[index][0 if push else 1] += _sum(counts, PUSHED if push else PULLED)
        sums[index][2] += _sum(counts, FAILED)
    return Throughput(
        width,
        [Bucket(first + width * i, *sums[i]) for i in range(BUCKETS)],
    )


def _sum(counts: Mapping[str, Any], names: tuple[str, ...]) -> int:
    return sum(v for k in names if isinstance(v := counts.get(k), int))


def _floor(moment: datetime, width: timedelta) -> datetime:
    return _EPOCH + width * ((moment - _EPOCH) // width)


def _time_text(moment: datetime, width: timedelta) -> str:
    moment = moment.astimezone(UTC)
    if width >= timedelta(days=1):
        return moment.strftime("%d %b")
    if width >= timedelta(hours=1):
        return moment.strftime("%d %b %H:%M UTC")
    return moment.strftime("%H:%M UTC")


def _span_text(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 60 * 24:
        return f"{minutes // 60} h"
    return f"{minutes // (60 * 24)} days"
