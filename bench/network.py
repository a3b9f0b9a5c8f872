"""A link with latency between every push contender and the server.

The sandbox's network proxy (``fhir_bridge.sandbox._netproxy``) runs in a process of its own
(so that it does not share the client's CPU through the GIL), listening on a free local port and
forwarding to the server; ``latency_ms`` is the round trip it adds. Each byte is held for half
of it in each direction from the moment it was read, and the bytes behind it are not held again:
a request and its response pay one round trip however large their bodies, as on a real link.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

START_SECONDS = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def link(base_url: str, latency_ms: float) -> Iterator[str]:
    """``base_url`` as reached through a proxy adding ``latency_ms`` per round trip."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    listen = _free_port()
    proxy = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fhir_bridge.sandbox._netproxy",
            "--upstream",
            f"{host}:{port}",
            "--port",
            str(listen),
            "--latency-ms",
            str(latency_ms),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + START_SECONDS
        while not _listening(listen):
            if proxy.poll() is not None or time.monotonic() > deadline:
                error = proxy.stderr.read().decode()[-500:] if proxy.stderr else ""
                raise RuntimeError(f"the network proxy did not start: {error}")
            time.sleep(0.05)
        yield urlunsplit(parts._replace(netloc=f"127.0.0.1:{listen}"))
    finally:
        proxy.terminate()
        try:
            proxy.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proxy.kill()
            proxy.wait()
        if proxy.stderr is not None:
            proxy.stderr.close()
