"""The sandbox's start options: profile and SMART authorization server, from the API to the
server's command line, the state files and ``sandbox start|status``; no server is started."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fhir_bridge import sandbox
from fhir_bridge.sandbox import _java, _manager, cli
from fhir_bridge.sandbox._manager import status

SMART = sandbox.SmartServer(
    issuer="http://127.0.0.1:8180/realms/ehr",
    jwks_url="http://127.0.0.1:8180/realms/ehr/protocol/openid-connect/certs",
    token_url="http://127.0.0.1:8180/realms/ehr/protocol/openid-connect/token",
)
JAR = Path("/opt/sandbox.jar")
DATA = Path("/state/data")


def test_open_without_smart_is_the_command_line_of_before() -> None:
    command = _java.server_command("java", JAR, 8080, DATA, False)
    assert command[-3:] == [str(JAR), "--port=8080", f"--data-dir={DATA}"]
    assert not any(a.startswith(("--profile", "--smart")) for a in command)


def test_profile_and_smart_reach_the_server_command_line() -> None:
    command = _java.server_command("java", JAR, 8090, DATA, True, profile="epic-like", smart=SMART)
    tail = command[command.index(f"--data-dir={DATA}") + 1 :]
    assert tail == [
        "--validate",
        "--profile=epic-like",
        f"--smart-issuer={SMART.issuer}",
        f"--smart-jwks-url={SMART.jwks_url}",
        f"--smart-token-url={SMART.token_url}",
    ]


@pytest.mark.parametrize("field", ["issuer", "jwks_url", "token_url"])
@pytest.mark.parametrize("value", ["", "ftp://host/x", "127.0.0.1:8180/token", "http://"])
def test_smart_server_urls_must_be_http(field: str, value: str) -> None:
    given = {**SMART.to_json(), field: value}
    with pytest.raises(sandbox.SandboxError, match=f"SmartServer.{field}"):
        sandbox.SmartServer(**given)


def test_smart_server_round_trips_through_its_state_form() -> None:
    assert sandbox.SmartServer.from_json(SMART.to_json()) == SMART
    assert sandbox.SmartServer.from_json(None) is None
    assert sandbox.SmartServer.from_json({"issuer": "http://a"}) is None
    assert sandbox.SmartServer.from_json({**SMART.to_json(), "token_url": "nope"}) is None


def test_unknown_profile_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(sandbox.SandboxError, match="unknown sandbox profile 'cerner'") as caught:
        sandbox.start(8099, state_dir=tmp_path / "state", profile="cerner")
    assert "epic-like" in caught.value.message
    assert not (tmp_path / "state").exists()


def test_status_reads_profile_and_smart_from_the_last_start(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    options = {"port": 8090, "validate": False, "profile": "oracle-like", "smart": SMART.to_json()}
    (folder / "options.json").write_text(json.dumps(options))
    info = status(8090, folder)
    assert not info.running
    assert (info.port, info.profile, info.smart) == (8090, "oracle-like", SMART)


def test_status_of_a_state_from_before_profiles_is_open(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    (folder / "options.json").write_text(json.dumps({"port": 8081, "validate": True}))
    info = status(8081, folder)
    assert (info.validate, info.profile, info.smart) == (True, "open", None)


def test_profiles_are_those_the_server_knows() -> None:
    java = (
        Path(sandbox.jar_path()).parents[1]
        / "src/main/java/org/fhirbridge/sandbox/SandboxProfile.java"
    ).read_text(encoding="utf-8")
    for name in sandbox.PROFILES:
        assert f'"{name}"' in java


runner = CliRunner()


def test_cli_refuses_an_unknown_profile_as_usage() -> None:
    result = runner.invoke(cli.app, ["start", "--profile", "cerner", "--port", "8099"])
    assert result.exit_code == 2
    assert "epic-like" in result.output


def test_cli_wants_all_three_smart_urls_or_none() -> None:
    result = runner.invoke(
        cli.app, ["start", "--port", "8099", "--smart-issuer", "http://127.0.0.1:8180/realms/x"]
    )
    assert result.exit_code == 2
    assert "--smart-token-url" in result.output


def test_cli_status_names_the_profile_and_the_issuer(tmp_path: Path) -> None:
    info = sandbox.SandboxInfo(
        port=8090,
        base_url="http://127.0.0.1:8090/fhir",
        running=True,
        healthy=True,
        pid=1234,
        validate=False,
        state_dir=tmp_path,
        log_file=tmp_path / "server.log",
        data_dir=tmp_path / "data",
        profile="epic-like",
        smart=SMART,
    )
    line = cli._describe(info)
    assert "profile epic-like" in line
    assert f"SMART tokens from {SMART.issuer}" in line
    open_line = cli._describe(dataclasses.replace(info, profile="open", smart=None))
    assert "profile open, no authorization" in open_line


def test_reset_starts_again_with_the_profile_and_smart_of_the_last_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "state"
    (folder / "data").mkdir(parents=True)
    options = {"port": 8091, "validate": False, "profile": "oracle-like", "smart": SMART.to_json()}
    (folder / "options.json").write_text(json.dumps(options))
    calls: list[tuple[object, ...]] = []
    monkeypatch.setattr(_manager, "stop", lambda port, state_dir: calls.append(("stop", port)))

    def fake_start(port: int, validate: bool, state_dir: Path, **kwargs: object) -> str:
        calls.append(("start", port, validate, kwargs["profile"], kwargs["smart"]))
        return "started"

    monkeypatch.setattr(_manager, "start", fake_start)
    assert _manager.reset(8091, folder) == "started"
    assert calls == [("stop", 8091), ("start", 8091, False, "oracle-like", SMART)]
    assert not (folder / "data").exists()
