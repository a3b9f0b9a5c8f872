"""Latency of the subscription path: a change on the server to the internal record updated.

A HAPI REST-hook Subscription shaped as ``fhir-bridge subscribe`` makes them (no payload, its
own secret in a header, endpoint ``<callback>/fhir/notify/<connection>/Goal``) notifies
``fhir-bridge serve``, whose webhook pulls Goal from the server since the watermark (the
notification window set to 0 here: each change is measured alone). Its criteria name the
benchmark's own identifier system (``Goal?identifier=<namespace>/goal|``) rather than every
Goal, so that nothing else written to a shared server ever notifies the short-lived webhook.

Each change edits one goal's description on the server; the clock runs from just before that
write until the new text is read back from the store. The Subscription's endpoint is the
sandbox's network proxy (no latency added) in front of the webhook, which stamps when each
notification's request reaches it: the time up to that stamp is the server's (matching the
change, queueing and posting the notification), the rest is the bridge's (the webhook pulling
the type from the server and applying it, and the store answering the poll).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from fhir_bridge import model as m
from fhir_bridge.config import WEBHOOK_SECRET_HEADER as SECRET_HEADER
from fhir_bridge.fhir import FhirClient
from fhir_bridge.sandbox import running_in_thread
from fhir_bridge.store import Store
from fhir_bridge.sync._subscriptions import REASON, endpoint

from .push import CONNECTION, FHIR_JSON

POLL_SECONDS = 0.005
WAIT_SECONDS = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(path: Path, database_url: str, base_url: str, namespace: str) -> Path:
    path.write_text(
        f'database_url = "{database_url}"\nnamespace = "{namespace}"\n'
        "notification_window_seconds = 0\n\n"
        f'[connections.{CONNECTION}]\nbase_url = "{base_url}"\nenrol = "all"\n'
    )
    return path


def _wait_until(check: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


@dataclass(frozen=True)
class Change:
    """Seconds from one server write to the record updated in the store (``total``), and to
    the notification's request reaching the webhook (``delivery``; None: no stamp found)."""

    total: float
    delivery: float | None

    @property
    def applied(self) -> float | None:
        return None if self.delivery is None else self.total - self.delivery


def measure(
    database_url: str, base_url: str, namespace: str, work_dir: Path, changes: int = 50
) -> list[Change]:
    """Each server write until the record is updated in the store, delivery apart."""
    env = dict(os.environ)
    env["FHIR_BRIDGE_CONFIG"] = str(
        _config(work_dir / "fhir-bridge.toml", database_url, base_url, namespace)
    )
    port = _free_port()
    callback = f"http://127.0.0.1:{port}"
    with (work_dir / "serve.log").open("w") as serve_log:
        serve = subprocess.Popen(
            [str(Path(sys.executable).parent / "fhir-bridge"), "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=serve_log,
        )
    store = Store(database_url)
    subscription = None
    try:
        _wait_until(lambda: _answers(f"{callback}/healthz"), "fhir-bridge serve")
        with running_in_thread("127.0.0.1", port) as stamps:
            subscription = asyncio.run(_subscribe(store, base_url, stamps.url, namespace))
            http = httpx.Client(
                base_url=base_url,
                headers={
                    "Content-Type": FHIR_JSON,
                    "Accept": FHIR_JSON,
                    "Cache-Control": "no-cache",
                },
                timeout=60.0,
            )
            _wait_until(lambda: _all_active(http, stamps.url), "active subscriptions")
            goals = [
                link
                for link in store.links.of_connection(CONNECTION)
                if link.resource_type == "Goal" and link.record_id
            ][:changes]
            measured = []
            for n, link in enumerate(goals):
                resource = http.get(f"Goal/{link.resource_id}").raise_for_status().json()
                text = f"Goal reviewed, version {n}"
                resource["description"] = {"text": text}
                seen = len(stamps.stats.request_starts)
                wall = time.time()
                started = time.perf_counter()
                http.put(f"Goal/{link.resource_id}", json=resource).raise_for_status()
                record_id = link.record_id
                assert record_id is not None
                deadline = started + WAIT_SECONDS
                while True:
                    record = store.records.get("goal", record_id)
                    if isinstance(record, m.Goal) and record.description.text == text:
                        total = time.perf_counter() - started
                        break
                    if time.perf_counter() > deadline:
                        raise RuntimeError(f"goal {n}: the change never reached the record")
                    time.sleep(POLL_SECONDS)
                posted = [t for t in stamps.stats.request_starts[seen:] if t >= wall]
                delivery = min(posted[0] - wall, total) if posted else None
                measured.append(Change(total, delivery))
            http.close()
            return measured
    finally:
        try:
            if subscription is not None:
                asyncio.run(_unsubscribe(base_url, subscription))
        finally:
            store.close()
            serve.terminate()
            serve.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _all_active(http: httpx.Client, callback: str) -> bool:
    url = endpoint(callback, CONNECTION, "Goal")
    found = http.get("Subscription", params={"url": url}).json()
    statuses = {e["resource"]["status"] for e in found.get("entry", [])}
    return statuses == {"active"}


async def _subscribe(store: Store, base_url: str, callback: str, namespace: str) -> str:
    url = endpoint(callback, CONNECTION, "Goal")
    secret_id, secret = store.subscription_secrets.issue(CONNECTION, "Goal", url, datetime.now(UTC))
    async with FhirClient(base_url, timeout=180.0) as client:  # HAPI can be slow to accept it
        created = await client.create(
            {
                "resourceType": "Subscription",
                "status": "requested",
                "reason": REASON,
                "criteria": f"Goal?identifier={namespace}/goal|",
                "channel": {
                    "type": "rest-hook",
                    "endpoint": url,
                    "header": [f"{SECRET_HEADER}: {secret}"],
                },
            }
        )
        if created.id is None:
            raise RuntimeError("the server gave the Subscription no id")
        store.subscription_secrets.attach(secret_id, created.id)
        return created.id


async def _unsubscribe(base_url: str, subscription: str) -> None:
    async with FhirClient(base_url) as client:
        await client.delete("Subscription", subscription)
