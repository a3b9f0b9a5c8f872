"""How a link's latency is added: the sandbox's proxy (per round trip) against Toxiproxy's
latency toxic (per chunk), on the same exchanges.

``python -m bench.links [--toxiproxy PATH] [--latency-ms 25] [--sizes 1000,100000,1000000]``

A local HTTP server answers ``GET /?size=N`` with N bytes; each exchange is timed directly,
through the sandbox's proxy at the round trip given, and through Toxiproxy (when its server
binary is found: ``go install github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0``) with a
latency toxic of half the round trip on each direction. Prints one JSON line per size.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from fhir_bridge.sandbox import running_in_thread

REQUESTS = 20


class _Sized(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        size = int(self.path.split("size=")[1])
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        self.wfile.write(b"x" * size)

    def log_message(self, *_: object) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Sized)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()


@contextmanager
def _toxiproxy(binary: str, upstream: int, latency_ms: float) -> Iterator[int]:
    api, listen = _free_port(), _free_port()
    server = subprocess.Popen(
        [binary, "-host", "127.0.0.1", "-port", str(api)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        admin = httpx.Client(base_url=f"http://127.0.0.1:{api}", timeout=10)
        deadline = time.monotonic() + 30
        while True:
            try:
                admin.get("/version").raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        admin.post(
            "/proxies",
            json={
                "name": "link",
                "listen": f"127.0.0.1:{listen}",
                "upstream": f"127.0.0.1:{upstream}",
            },
        ).raise_for_status()
        for stream in ("upstream", "downstream"):
            admin.post(
                "/proxies/link/toxics",
                json={
                    "type": "latency",
                    "stream": stream,
                    "attributes": {"latency": int(latency_ms / 2), "jitter": 0},
                },
            ).raise_for_status()
        yield listen
    finally:
        server.terminate()
        server.wait(timeout=10)


def _median_ms(port: int, size: int) -> float:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        http.get("/", params={"size": 1}).raise_for_status()  # the connection, opened once
        times = []
        for _ in range(REQUESTS):
            started = time.perf_counter()
            body = http.get("/", params={"size": size}).raise_for_status().content
            times.append((time.perf_counter() - started) * 1000)
            assert len(body) == size
    return round(statistics.median(times), 1)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.links", description=__doc__)
    default = shutil.which("toxiproxy-server") or str(Path.home() / "go" / "bin" / "server")
    p.add_argument("--toxiproxy", default=default, help="Toxiproxy's server binary")
    p.add_argument("--latency-ms", type=float, default=25.0)
    p.add_argument("--sizes", default="1000,100000,1000000")
    args = p.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",")]
    toxi = args.toxiproxy if os.access(args.toxiproxy, os.X_OK) else None
    with _server() as port, running_in_thread("127.0.0.1", port, latency_ms=args.latency_ms) as px:
        for size in sizes:
            row: dict[str, object] = {
                "bytes": size,
                "direct_ms": _median_ms(port, size),
                "proxy_ms": _median_ms(px.port, size),
            }
            if toxi:
                with _toxiproxy(toxi, port, args.latency_ms) as listen:
                    row["toxiproxy_ms"] = _median_ms(listen, size)
            print(json.dumps({"round_trip_ms": args.latency_ms, **row}), flush=True)


if __name__ == "__main__":
    main()
