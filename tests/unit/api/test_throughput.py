"""Throughput buckets from sync runs, and their layout as stacked bars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fhir_bridge.api._throughput import BOTTOM, BUCKETS, HEIGHT, TOP, throughput
from fhir_bridge.store import Run

NOW = datetime(2026, 3, 2, 10, 30, 20, tzinfo=UTC)


def run(ago: timedelta, direction: str, **counts: int) -> Run:
    return Run(1, "ehr", direction, NOW - ago, None, None, dict(counts))


@pytest.mark.parametrize(
    ("oldest", "width"),
    [
        (timedelta(seconds=5), timedelta(minutes=1)),
        (timedelta(minutes=22), timedelta(minutes=1)),
        (timedelta(minutes=30), timedelta(minutes=5)),
        (timedelta(hours=3), timedelta(minutes=15)),
        (timedelta(hours=20), timedelta(hours=1)),
        (timedelta(days=3), timedelta(hours=6)),
        (timedelta(days=20), timedelta(days=1)),
        (timedelta(days=400), timedelta(days=7)),
    ],
)
def test_the_bucket_width_fits_the_oldest_run_into_the_window(
    oldest: timedelta, width: timedelta
) -> None:
    chart = throughput([run(oldest, "push", created=1)], NOW)
    assert chart.width == width
    assert len(chart.buckets) == BUCKETS
    assert chart.buckets[-1].start <= NOW < chart.buckets[-1].start + width


def test_no_runs_is_an_empty_minute_chart() -> None:
    chart = throughput([], NOW)
    assert (chart.width, chart.peak) == (timedelta(minutes=1), 0)
    assert all(not bar.segments for bar in chart.bars())


def test_pushes_pulls_and_failures_are_summed_per_bucket() -> None:
    """Push: created + updated; pull: new + updated + deleted; failures of both kinds."""
    chart = throughput(
        [
            run(timedelta(seconds=10), "push", created=5, updated=2, unchanged=40, dead_lettered=1),
            run(timedelta(seconds=15), "pull", new=1, updated=3, deleted=1, unchanged=9, failed=2),
            run(timedelta(minutes=3), "push", created=4, not_supported=1),
        ],
        NOW,
    )
    last = chart.buckets[-1]
    assert (last.pushed, last.pulled, last.failed) == (7, 5, 3)
    earlier = next(b for b in chart.buckets if b.start == last.start - timedelta(minutes=3))
    assert (earlier.pushed, earlier.pulled, earlier.failed) == (4, 0, 1)
    assert chart.peak == 15


def test_bars_stack_from_the_axis_and_the_peak_fills_the_height() -> None:
    chart = throughput([run(timedelta(0), "push", created=6, failed=2)], NOW)
    bar = chart.bars()[-1]
    pushed, failed = bar.segments
    assert (pushed.series, failed.series) == ("pushed", "failed")
    assert pushed.y + pushed.height == pytest.approx(HEIGHT - BOTTOM, abs=0.2)
    assert failed.y == pytest.approx(TOP, abs=0.2)
    assert pushed.height == pytest.approx(3 * failed.height, abs=0.2)
    assert "6 pushed, 0 pulled, 2 failed" in bar.label


def test_runs_outside_the_window_are_left_out() -> None:
    chart = throughput(
        [
            run(timedelta(seconds=1), "push", created=1),
            run(timedelta(minutes=-5), "push", created=9),
        ],
        NOW,
    )
    assert chart.peak == 1


def test_labels_name_the_first_middle_and_last_bucket() -> None:
    ticks = throughput([run(timedelta(hours=20), "push", created=1)], NOW).ticks()
    assert [t.anchor for t in ticks] == ["start", "middle", "end"]
    assert ticks[-1].text == "02 Mar 10:00 UTC"
