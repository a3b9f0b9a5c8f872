"""`subscriptions list|rotate-secret` and `subscribe`'s input checks, as a user runs them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fhir_bridge.store import Store
from tests.acceptance.conftest import Run

CONFIG = """\
[connections.county]
base_url = "http://127.0.0.1:9/fhir"
webhook_secret_env = "OLD_STATIC_SECRET"   # still accepted, no longer used
"""


def test_secrets_are_listed_never_shown_and_rotation_needs_a_subscription(
    cli: Run, tmp_path: Path
) -> None:
    (tmp_path / "fhir-bridge.toml").write_text(CONFIG)
    listed = cli("subscriptions", "list", "county")
    assert listed.returncode == 0, listed.stderr
    assert "0 valid secrets" in listed.stdout

    rotated = cli("subscriptions", "rotate-secret", "county")
    assert rotated.returncode == 2
    assert "run `fhir-bridge subscribe` first" in rotated.stderr
    assert "Traceback" not in rotated.stderr

    store = Store(f"sqlite:///{tmp_path / 'fhir-bridge.db'}")
    try:
        secret_id, secret = store.subscription_secrets.issue(
            "county",
            "Goal",
            "https://bridge.example.org/fhir/notify/county/Goal",
            datetime.now(UTC),
        )
        store.subscription_secrets.attach(secret_id, "sub-17")
    finally:
        store.close()
    listed = cli("subscriptions", "list", "county")
    assert listed.returncode == 0, listed.stderr
    assert "Goal" in listed.stdout
    assert "sub-17" in listed.stdout
    assert "1 valid secrets" in listed.stdout
    assert secret not in listed.stdout
    assert secret[4:20] not in listed.stdout


def test_bad_input_is_exit_2(cli: Run, tmp_path: Path) -> None:
    (tmp_path / "fhir-bridge.toml").write_text(CONFIG)
    unknown = cli("subscriptions", "rotate-secret", "nowhere")
    assert unknown.returncode == 2
    assert "nowhere" in unknown.stderr
    callback = cli("subscribe", "--connection", "county", "--callback", "ftp://bridge")
    assert callback.returncode == 2
    assert "--callback" in callback.stderr
