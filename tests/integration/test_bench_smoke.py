"""The benchmark code still runs: every part once on a tiny panel (no time is asserted)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("fhirpy")

from bench.__main__ import main


def test_the_benchmark_runs_every_part_on_a_tiny_panel(fhir_base_url: str, tmp_path: Path) -> None:
    """Smoke mode writes the JSON, the table and the chart, each contender moving the same data."""
    if not fhir_base_url.startswith(("http://127.0.0.1", "http://localhost")):
        pytest.skip("the latency part needs a server that can reach a webhook on this machine")
    assert main(["--smoke", "--fhir-url", fhir_base_url, "--out", str(tmp_path)]) == 0

    results = json.loads((tmp_path / "results.json").read_text())
    assert {"mapping", "push", "pull", "latency", "memory", "scaling"} <= set(results)
    panel = results["panel"]
    assert panel["patients"] == 5
    push = results["push"]["contenders"]
    assert {s["items"] for s in push.values()} == {panel["resources"]}
    assert results["push"]["nothing_changed"]["items"] == 0  # a second push writes nothing
    assert results["push"]["five_percent_changed"]["items"] >= 1
    pull = results["pull"]["contenders"]
    assert len({s["items"] for s in pull.values()}) == 1  # the same responses for all three
    assert results["latency"]["changes"] == 3
    assert len(results["memory"]["rows"]) == 2
    assert all(row["push"]["peak_rss_mb"] > 0 for row in results["memory"]["rows"])
    assert len(results["scaling"]["cells"]) == 4
    if os.environ.get("FHIR_BRIDGE_TEST_POSTGRES_URL"):  # set by make test and CI
        rows = results["workers"]["rows"]
        assert [(r["workers"], r["items"]) for r in rows] == [(1, 8), (2, 8)]
        assert "### Workers on PostgreSQL" in (tmp_path / "results.md").read_text()
    assert results["machine"]["cpus"] >= 1
    assert "| push bridge/raw |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "results.png").read_bytes().startswith(b"\x89PNG")
