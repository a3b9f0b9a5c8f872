"""Shared test helpers: where the public examples live, and how to read them."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any, NamedTuple

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


class ReadmeCommand(NamedTuple):
    """One ``$ fhir-bridge ...`` line of the README's first example, and what its comment
    promises (the text after ``#``)."""

    args: list[str]
    comment: str


def readme_example() -> list[ReadmeCommand]:
    """The commands of README.md's "One example" block, in order (lines that are not a
    ``$ fhir-bridge`` command, such as "a clinician marks a goal achieved", left out)."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## One example", 1)[1].split("```", 2)[1]
    commands = []
    for line in block.splitlines():
        if not line.startswith("$ fhir-bridge "):
            continue
        command, _, comment = line[2:].partition("#")
        commands.append(ReadmeCommand(shlex.split(command)[1:], comment.strip()))
    return commands
