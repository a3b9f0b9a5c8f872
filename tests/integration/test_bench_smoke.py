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
    assert {"mapping", "push", "pull", "latency", "network", "memory", "scaling"} <= set(results)
    panel = results["panel"]
    assert panel["patients"] == 5
    push = results["push"]["contenders"]
    assert {s["items"] for s in push.values()} == {panel["resources"]}
    assert results["push"]["nothing_changed"]["items"] == 0  # a second push writes nothing
    # each push's CPU here (the server's process is not known with --fhir-url)
    assert all(s["cpu_seconds"]["client"] > 0 for s in push.values())
    mapping = results["mapping"]
    assert mapping["rendered"]["items"] == mapping["to_fhir"]["items"] > 0
    assert results["push"]["five_percent_changed"]["items"] >= 1
    pull = results["pull"]["contenders"]
    assert len({s["items"] for s in pull.values()}) == 1  # the same responses for all three
    latency = results["latency"]
    assert latency["changes"] == 3
    # the server's delivery stamped apart: every notification reached the webhook's proxy
    assert latency["delivery"]["changes"] == 3
    assert latency["delivery"]["max_ms"] <= latency["max_ms"]
    # every push contender moved the same panel through the link, at each round trip
    network = results["network"]
    assert [row["latency_ms"] for row in network["rows"]] == [0.0, 25.0]
    for row in network["rows"]:
        assert {s["items"] for s in row["contenders"].values()} == {network["resources"]}
        assert set(row["ratios"]) == {"bridge/fhirpy", "bridge/fhirpy_async", "bridge/raw"}
    # the scaling curve: time and peak RSS at each size, in processes of their own
    curve = results["memory"]["rows"]
    assert [row["patients"] for row in curve] == [1, 2, 4]
    assert all(row["push"]["peak_rss_mb"] > 0 for row in curve)
    assert all(row["pull"]["resources"] > 0 for row in curve)
    assert results["memory"]["growth"]["to_patients"] == 4
    # the bulk row runs once `pull --bulk` exists, and is skipped (named) until then
    if "bulk" in results:
        assert results["bulk"]["bulk"]["links_after"] == results["bulk"]["paged"]["links_after"]
    else:
        assert "pull --bulk" in results["skipped_parts"]["bulk"]
    assert len(results["scaling"]["cells"]) == 4
    if os.environ.get("FHIR_BRIDGE_TEST_POSTGRES_URL"):  # set by make test and CI
        rows = results["workers"]["rows"]
        assert [(r["workers"], r["items"]) for r in rows] == [(1, 8), (2, 8)]
        assert "### Workers on PostgreSQL" in (tmp_path / "results.md").read_text()
    assert results["machine"]["cpus"] >= 1
    table = (tmp_path / "results.md").read_text()
    for target in (
        "push bridge/raw",
        "push on 25 ms, bridge/fhirpy one at a time",
        "pull bridge/raw",
    ):
        assert f"| {target} |" in table
    assert "### Scaling curve" in table
    assert (tmp_path / "results.png").read_bytes().startswith(b"\x89PNG")
