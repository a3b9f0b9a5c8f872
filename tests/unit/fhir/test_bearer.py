"""Static bearer tokens: sent as given, never renewed, loaded from env or file."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fhir_bridge.errors import FhirStatusError, InputError
from fhir_bridge.fhir import BearerToken
from tests.unit.fhir.auth_fakes import client

pytestmark = pytest.mark.anyio


async def test_static_bearer_token_401_is_raised() -> None:
    """A fixed token cannot be renewed: a 401 is raised at once."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(401)

    async with client(handler, BearerToken("static-token-value")) as fhir:
        with pytest.raises(FhirStatusError) as caught:
            await fhir.read("Patient", "p1")
    assert caught.value.status == 401
    assert seen == ["Bearer static-token-value"]


def test_bearer_from_env_and_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tokens load from an env var or a file (stripped); a missing one names only its source."""
    monkeypatch.setenv("BRIDGE_TOKEN", "env-token\n")
    path = tmp_path / "token"
    path.write_text("file-token\n")
    assert BearerToken.from_env("BRIDGE_TOKEN")._token.reveal() == "env-token"
    assert BearerToken.from_file(path)._token.reveal() == "file-token"
    monkeypatch.delenv("BRIDGE_TOKEN")
    with pytest.raises(InputError, match=r"\$BRIDGE_TOKEN"):
        BearerToken.from_env("BRIDGE_TOKEN")
    with pytest.raises(InputError, match="cannot read"):
        BearerToken.from_file(tmp_path / "absent")
