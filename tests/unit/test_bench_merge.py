"""``python -m bench --merge A --merge B``: parts a run skipped, taken from earlier runs."""

from __future__ import annotations

from typing import Any

from bench.__main__ import merge


def run(when: str, **parts: Any) -> dict[str, Any]:
    return {
        "machine": {"when": when, "load_average_start": [1.0, 1.0, 1.0]},
        "panel": {"patients": 500},
        "config": {"repetitions": 2},
        "part_seconds": dict.fromkeys(parts, 10.0),
        **parts,
    }


def test_each_part_comes_from_the_first_run_holding_it_with_that_runs_account() -> None:
    results = run("now", pull={"ratio": 1.2})
    first = run("morning", pull={"ratio": 0.5}, push={"ratio": 0.9}, memory={"rows": []})
    first["measured_separately"] = {
        "memory": {"when": "noon", "load_average_start": [2.0], "seconds": 99.0}
    }
    second = run("evening", push={"ratio": 0.1}, bulk={"patients": 10_000})
    merge(results, first)
    merge(results, second)
    assert results["pull"] == {"ratio": 1.2}  # measured in this run: kept
    assert results["push"] == {"ratio": 0.9}  # the first run holding it
    assert results["bulk"] == {"patients": 10_000}
    accounts = results["measured_separately"]
    assert accounts["memory"]["when"] == "noon"  # taken over by the first run: its account
    assert (accounts["push"]["when"], accounts["push"]["patients"]) == ("morning", 500)
    # the bulk part has a panel of its own: the run's panel size is not its
    bulk = accounts["bulk"]
    assert (bulk["when"], bulk["patients"], bulk["repetitions"]) == ("evening", None, None)
    assert "pull" not in accounts
