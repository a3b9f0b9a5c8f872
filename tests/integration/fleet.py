"""What the scale-out tests share: a panel of patients, worker processes, test servers.

The relay is a small ASGI app run by uvicorn in a thread on loopback. Put between the
workers and a server, it forwards every request and counts how many are in flight at the
server at once; it can also hold the answers to writes until told to let them go.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from fhir_bridge import model as m
from fhir_bridge.store import Store

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EXE = str(Path(sys.executable).parent / "fhir-bridge")
Json = dict[str, Any]
Asgi = Callable[
    [dict[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


def panel(patients: int, goals_each: int, prefix: str = "sp") -> list[m.Record]:
    """``patients`` patients with ``goals_each`` goals each (1 + goals_each resources each)."""
    records: list[m.Record] = []
    for i in range(patients):
        pid = f"{prefix}-{i}"
        records.append(
            m.Patient(
                id=pid,
                updated_at=NOW,
                names=[m.PersonName(family="Panel", given=[f"P{i}"])],
                birth_date="1950-01-01",
                sex="female",
                identifiers=[m.Identifier(system="https://care.example.org/mrn", value=pid)],
            )
        )
        records += [goal(pid, j, 1) for j in range(goals_each)]
    return records


def goal(patient: str, j: int, version: int) -> m.Goal:
    return m.Goal(
        id=f"{patient}-g{j}",
        updated_at=NOW,
        patient=patient,
        description=m.Concept(text=f"walk daily, version {version}"),
        lifecycle_status=m.GoalLifecycle.active,
        start_date="2025-01-01",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, connections: dict[str, str], max_in_flight: int = 8) -> None:
    path.write_text(
        "".join(
            f'[connections.{name}]\nbase_url = "{url}"\nenrol = "all"\n'
            f"max_in_flight = {max_in_flight}\n"
            for name, url in connections.items()
        )
    )


class Fleet:
    """Worker processes of one configuration, each logging to a file of its own."""

    def __init__(self, tmp_path: Path, env: dict[str, str], *args: str) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.args = args
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.started = 0

    def start(self, slot: int) -> subprocess.Popen[bytes]:
        self.started += 1
        log = (self.tmp_path / f"worker-{slot}-{self.started}.log").open("wb")
        proc = subprocess.Popen(
            [EXE, "worker", *self.args], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self.procs[slot] = proc
        return proc

    def kill(self, slot: int) -> None:
        proc = self.procs[slot]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.tmp_path.glob("worker-*.log"))
        )


def drain(store: Store, connection: str, timeout: float = 180.0) -> dict[str, int]:
    """Wait until nothing is pending for the connection; the final outbox counts."""
    deadline = time.monotonic() + timeout
    while True:
        depth = store.outbox.depth(connection)
        if not depth.pending:
            return depth.as_dict()
        assert time.monotonic() < deadline, f"outbox never drained: {depth}"
        time.sleep(0.5)


def server_copies(fhir_base_url: str, resource_type: str, system: str) -> dict[str, list[Json]]:
    """Every resource of a type on the server carrying an identifier of ``system``, by value."""
    found: dict[str, list[Json]] = {}
    with httpx.Client(
        headers={"Accept": "application/fhir+json", "Cache-Control": "no-cache"}, timeout=120
    ) as http:
        url: str | None = f"{fhir_base_url}/{resource_type}"
        params: dict[str, str] | None = {"identifier": f"{system}|", "_count": "500"}
        while url:
            page = http.get(url, params=params).json()
            params = None
            for entry in page.get("entry", []):
                resource = entry["resource"]
                for ident in resource.get("identifier", []):
                    if ident.get("system") == system:
                        found.setdefault(ident["value"], []).append(resource)
            url = next((x["url"] for x in page.get("link", []) if x["relation"] == "next"), None)
    return found


def out_of_order(store: Store, namespace: str) -> list[str]:
    """Identifiers whose writes in the sync log go back to an older record version."""
    last: dict[str, int] = {}
    wrong = []
    for entry in store.log.of_identifiers(namespace):
        if entry.action not in ("created", "updated") or entry.record_version is None:
            continue
        key = entry.identifier
        if entry.record_version < last.get(key, 0):
            wrong.append(key)
        last[key] = max(last.get(key, 0), entry.record_version)
    return wrong


@dataclass
class Relay:
    """Forwards to ``upstream``; counts requests in flight there; can hold write answers."""

    upstream: str
    in_flight: int = 0
    max_in_flight: int = 0
    requests: int = 0
    writes: int = 0  # resources written: a bundle's entries, or one per other write
    hold_writes: bool = False
    held: int = 0
    released: threading.Event = field(default_factory=threading.Event)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"].split("/fhir", 1)[-1]
        query = scope["query_string"].decode()
        url = f"{self.upstream}{path}" + (f"?{query}" if query else "")
        headers = [
            (k.decode(), v.decode())
            for k, v in scope["headers"]
            if k.decode().lower() not in ("host", "content-length")
        ]
        self.requests += 1
        if scope["method"] != "GET":
            self.writes += _writes_in(body)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            async with httpx.AsyncClient(timeout=120) as client:
                response = await client.request(scope["method"], url, headers=headers, content=body)
        finally:
            self.in_flight -= 1
        if self.hold_writes and scope["method"] != "GET":
            self.held += 1
            while not self.released.is_set():
                await asyncio.sleep(0.05)
        out = [
            (k.encode(), v.encode())
            for k, v in response.headers.items()
            if k.lower() not in ("content-length", "transfer-encoding", "content-encoding")
        ]
        out.append((b"content-length", str(len(response.content)).encode()))
        await send({"type": "http.response.start", "status": response.status_code, "headers": out})
        await send({"type": "http.response.body", "body": response.content})


def _writes_in(body: bytes) -> int:
    """The resources one write request carries: a Bundle's entries, else the one resource."""
    try:
        sent = json.loads(body) if body else None
    except ValueError:
        return 1
    if isinstance(sent, dict) and sent.get("resourceType") == "Bundle":
        return len(sent.get("entry", []))
    return 1


@contextmanager
def serving(app: Asgi) -> Iterator[str]:
    """Run an ASGI app on a loopback port in a thread; yields its base URL (``/fhir``)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "test server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/fhir"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def worker_env(tmp_path: Path, database_url: str, namespace: str) -> dict[str, str]:
    return {
        **os.environ,
        "FHIR_BRIDGE_NAMESPACE": namespace,
        "FHIR_BRIDGE_CONFIG": str(tmp_path / "fhir-bridge.toml"),
        "FHIR_BRIDGE_DATABASE_URL": database_url,
    }


def pick(n: int) -> int:
    return random.randrange(n)  # noqa: S311 - choosing a victim, not a secret


@dataclass
class ThrottlingServer:
    """A minimal FHIR server (conditional update only). Its first write starts a throttle:
    every write for ``retry_after`` seconds gets 429 with the time left as Retry-After. It
    keeps the time and status of every write it receives."""

    retry_after: int
    started: float | None = None  # when the throttle began (time.monotonic)
    writes: list[tuple[float, int]] = field(default_factory=list)
    resources: dict[str, Json] = field(default_factory=dict)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"].split("/fhir", 1)[-1].strip("/")
        if scope["method"] == "GET" and path == "metadata":
            await _answer(send, 200, _capabilities())
            return
        if scope["method"] != "PUT":
            await _answer(send, 404, {"resourceType": "OperationOutcome", "issue": []})
            return
        now = time.monotonic()
        if self.started is None:
            self.started = now
        left = self.started + self.retry_after - now
        if left > 0:
            self.writes.append((now, 429))
            await _answer(
                send,
                429,
                {"resourceType": "OperationOutcome", "issue": []},
                [(b"retry-after", str(int(left) + 1).encode())],
            )
            return
        self.writes.append((now, 201))
        resource = json.loads(body)
        query = scope["query_string"].decode()
        resource_id = self.resources.get(query, {}).get("id") or uuid.uuid4().hex[:16]
        resource = {**resource, "id": resource_id, "meta": {"versionId": "1"}}
        self.resources[query] = resource
        location = f"{path.split('?')[0]}/{resource_id}/_history/1".encode()
        await _answer(send, 201, resource, [(b"location", location), (b"etag", b'W/"1"')])


def _capabilities() -> Json:
    interactions = [{"code": c} for c in ("read", "create", "update", "search-type")]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "resource": [
                    {"type": t, "interaction": interactions, "conditionalUpdate": True}
                    for t in ("Patient", "Goal")
                ],
            }
        ],
    }


async def _answer(
    send: Any, status: int, body: Json, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    content = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/fhir+json"),
                (b"content-length", str(len(content)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})
