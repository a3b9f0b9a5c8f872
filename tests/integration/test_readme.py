"""README.md's first example, run as written, in a fresh directory, against the real server.

The commands are read from README.md (so the README cannot drift from what works): ``load
fixtures/*.json``, the dry run, then the push, whose counts must be the ones the README
promises on the *first* push; a second push then has nothing to create. The sandbox command
is left to the session's server, and the pull (it needs a clinician's edit) to test_pull.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from fhir_bridge.documents import read_loaded
from tests.helpers import FIXTURES, readme_example


def _counts(output: str) -> dict[str, int]:
    """The counts of a ``push`` table: header names over one row of numbers."""
    header = next(line for line in output.splitlines() if "created" in line and "┃" in line)
    names = [cell.strip() for cell in header.strip("┃ ").split("┃")]
    row = next(
        line for line in output.splitlines() if "│" in line and line.strip("│ ")[:1].isdigit()
    )
    values = [int(cell.strip()) for cell in row.strip("│ ").split("│")]
    return dict(zip(names, values, strict=True))


def _promised(comment: str) -> dict[str, int]:
    """``created 81, updated 0, unchanged 6, ...`` as counts."""
    pairs = (part.strip().split(" ") for part in comment.split(",") if part.strip() != "...")
    return {name: int(value) for name, value in pairs}


def test_the_readme_example_pushes_everything_on_the_first_push(
    tmp_path: Path, fhir_base_url: str
) -> None:
    shutil.copytree(FIXTURES, tmp_path / "fixtures", ignore=shutil.ignore_patterns("incomplete"))
    exe = str(Path(sys.executable).parent / "fhir-bridge")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_BRIDGE_")}
    env["FHIR_BRIDGE_NAMESPACE"] = f"https://bridge.test/readme-{uuid.uuid4().hex[:10]}"

    def run(args: list[str]) -> subprocess.CompletedProcess[str]:
        expanded = [arg.replace("http://127.0.0.1:8080/fhir", fhir_base_url) for arg in args]
        globbed = [  # a shell expands fixtures/*.json
            str(p.relative_to(tmp_path)) if "*" in arg else arg
            for arg in expanded
            for p in (sorted(tmp_path.glob(arg)) if "*" in arg else [tmp_path])
        ]
        return subprocess.run(
            [exe, *globbed],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    commands = readme_example()
    assert [c.args[0] for c in commands][:4] == ["sandbox", "load", "push", "push"]
    _, load, dry_run, push = commands[:4]
    loaded = run(load.args)
    assert loaded.returncode == 0, loaded.stderr
    records = sum(len(read_loaded(path).records) for path in FIXTURES.glob("*.json"))
    assert f"loaded {records} records" in loaded.stdout
    planned = run(dry_run.args)
    assert planned.returncode == 0, planned.stderr
    assert "dry run: nothing written" in planned.stdout
    first = run(push.args)
    assert first.returncode == 0, first.stderr
    counts = _counts(first.stderr)  # the counts go to stderr
    assert {k: counts[k] for k in _promised(push.comment)} == _promised(push.comment)
    assert counts["failed"] == 0
    second = run(push.args)
    assert second.returncode == 0, second.stderr
    assert _counts(second.stderr)["created"] == 0
