"""README.md's first example, the commands that need no FHIR server, exactly as written.

The push itself runs against the real server in tests/integration/test_readme.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.acceptance.conftest import Run
from tests.helpers import FIXTURES, readme_example


def test_the_readme_load_stores_every_fixture_in_a_fresh_directory(
    cli: Run, tmp_path: Path
) -> None:
    shutil.copytree(FIXTURES, tmp_path / "fixtures", ignore=shutil.ignore_patterns("incomplete"))
    commands = {c.args[0]: c for c in reversed(readme_example())}  # the first of each
    load = commands["load"].args
    assert load == ["load", "fixtures/*.json"]
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.glob(load[1]))  # as a shell
    done = cli(load[0], *files)
    assert done.returncode == 0, done.stderr
    expected = 0
    for path in files:
        package = json.loads((tmp_path / path).read_text())
        expected += 1 + sum(len(v) for v in package.values() if isinstance(v, list))
    assert f"loaded {expected} records: {expected} new or changed" in done.stdout
    # the push names the URL `sandbox start` prints; with no configuration it takes everything
    push = commands["push"].args
    assert push[:3] == ["push", "--fhir-url", "http://127.0.0.1:8080/fhir"]
    got = cli(*commands["get"].args)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["id"] == "goal-rivera-a1c"
