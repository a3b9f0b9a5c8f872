"""Shared test helpers: where the public examples live, and how to read them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "tests" / "examples"  # public examples, with their sources: SOURCES.md
FIXTURES = ROOT / "fixtures"

Json = dict[str, Any]


def example_files() -> list[Path]:
    return sorted(p for p in EXAMPLES.glob("*/*") if p.suffix in (".json", ".ndjson"))


def fixture_files() -> list[Path]:
    return sorted(FIXTURES.glob("*.json"))


def resources_in(path: Path) -> list[tuple[Json, str | None]]:
    if path.suffix == ".ndjson":
        return [(json.loads(line), None) for line in path.read_text().splitlines() if line.strip()]
    data = json.loads(path.read_text())
    if data["resourceType"] == "Bundle":
        return [(e["resource"], e.get("fullUrl")) for e in data["entry"]]
    return [(data, None)]
