"""The validating sandbox's implementation guide (``--ig``): from the API to the server's
command line, the state files and ``sandbox start|status``; no server is started."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fhir_bridge import sandbox
from fhir_bridge.sandbox import _java, cli
from fhir_bridge.sandbox._manager import status

JAR = Path("/opt/sandbox.jar")
DATA = Path("/state/data")
HAPI = Path(sandbox.jar_path()).parents[1]


def test_the_guide_reaches_the_server_command_line_after_validate() -> None:
    command = _java.server_command("java", JAR, 8095, DATA, True, ig="us-core-6.1")
    assert command[-2:] == ["--validate", "--ig=us-core-6.1"]
    assert not any(a.startswith("--ig") for a in _java.server_command("java", JAR, 1, DATA, True))


@pytest.mark.parametrize(
    ("ig", "validate", "reason"),
    [
        ("us-core-5", True, "unknown implementation guide 'us-core-5'"),
        ("us-core-7", False, "--validate"),
    ],
)
def test_a_bad_guide_is_refused_before_anything_starts(
    tmp_path: Path, ig: str, validate: bool, reason: str
) -> None:
    with pytest.raises(sandbox.SandboxError, match=reason):
        sandbox.start(8099, validate, tmp_path / "state", ig=ig)
    assert not (tmp_path / "state").exists()


def test_status_reads_the_guide_of_the_last_start(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    options = {"port": 8095, "validate": True, "profile": "open", "ig": "us-core-7"}
    (folder / "options.json").write_text(json.dumps(options))
    assert status(8095, folder).ig == "us-core-7"
    (folder / "options.json").write_text(json.dumps({"port": 8081, "validate": True}))
    assert status(8081, folder).ig is None


def test_the_guides_are_those_the_server_knows_and_ships() -> None:
    java = (HAPI / "src/main/java/org/fhirbridge/sandbox/ImplementationGuide.java").read_text()
    for name in sandbox.IMPLEMENTATION_GUIDES:
        assert f'"{name}"' in java
    for version in ("6.1.0", "7.0.0"):
        package = HAPI / f"src/main/resources/ig/hl7.fhir.us.core-{version}.tgz"
        with tarfile.open(package) as tar:
            manifest = tar.extractfile("package/package.json")
            assert manifest is not None
            data = json.load(manifest)
        assert (data["name"], data["version"]) == ("hl7.fhir.us.core", version)
        assert f"us.core-{version}.tgz" in java


runner = CliRunner()


def test_cli_wants_validate_with_a_guide() -> None:
    result = runner.invoke(cli.app, ["start", "--port", "8099", "--ig", "us-core-7"])
    assert result.exit_code == 2
    assert "--validate" in result.output


def test_cli_refuses_an_unknown_guide_as_usage() -> None:
    result = runner.invoke(cli.app, ["start", "--port", "8099", "--validate", "--ig", "us-core-5"])
    assert result.exit_code == 2
    assert "us-core-6.1" in result.output
