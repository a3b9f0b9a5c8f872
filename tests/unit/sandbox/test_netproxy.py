"""The network proxy: bytes through intact, the delay applied, each fault doing what it says.

A small HTTP/1.1 server on a free local port answers with what it was sent (keep-alive), so a
real httpx client talks through the proxy as the benchmark's and the fault tests' clients do.
No time is asserted: only that a delay was applied.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
from collections.abc import Awaitable, Callable

import httpx
import pytest

from fhir_bridge.sandbox._netproxy import Fault, NetProxy, _upstream, running_in_thread


class EchoServer:
    """Answers every request with its body (or ``size`` bytes when ``?size=N``)."""

    def __init__(self) -> None:
        self.requests = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> EchoServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                target = lines[0].split(" ")[1]
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                self.requests += 1
                if "size=" in target:
                    body = b"x" * int(target.split("size=")[1])
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


Scenario = Callable[[EchoServer, NetProxy, httpx.AsyncClient], Awaitable[None]]


def run(scenario: Scenario, *, latency_ms: float = 0.0, timeout: float = 10.0) -> None:
    async def main() -> None:
        async with (
            EchoServer() as server,
            NetProxy("127.0.0.1", server.port, latency_ms=latency_ms) as proxy,
            httpx.AsyncClient(base_url=proxy.url, timeout=timeout) as client,
        ):
            await scenario(server, proxy, client)

    asyncio.run(main())


def test_requests_and_large_bodies_go_through_intact_with_the_delay_applied() -> None:
    body = bytes(range(256)) * 8192  # 2 MB: many chunks each way

    async def scenario(server: EchoServer, proxy: NetProxy, client: httpx.AsyncClient) -> None:
        first = await client.post("/echo", content=body)
        second = await client.post("/echo", content=b"small")
        assert first.content == body
        assert second.content == b"small"
        assert server.requests == 2
        assert proxy.stats.connections == 1  # keep-alive: both exchanges on one connection
        assert proxy.stats.exchanges == 2
        assert proxy.stats.delays_applied >= 1
        assert proxy.stats.bytes_up > len(body)
        assert proxy.stats.bytes_down > len(body)
        assert len(proxy.stats.request_starts) == 2

    run(scenario, latency_ms=20)


def test_without_latency_nothing_is_held() -> None:
    async def scenario(server: EchoServer, proxy: NetProxy, client: httpx.AsyncClient) -> None:
        assert (await client.post("/echo", content=b"hello")).content == b"hello"
        assert proxy.stats.delays_applied == 0

    run(scenario)


def test_a_reset_fails_the_next_request_only() -> None:
    async def scenario(server: EchoServer, proxy: NetProxy, client: httpx.AsyncClient) -> None:
        proxy.inject(Fault.reset(), times=1)
        with pytest.raises(httpx.TransportError):
            await client.post("/echo", content=b"lost")
        assert server.requests == 0
        assert (await client.post("/echo", content=b"again")).content == b"again"
        assert proxy.stats.faults_applied == ["reset"]

    run(scenario)


def test_a_stall_never_reaches_the_server_and_times_out() -> None:
    async def scenario(server: EchoServer, proxy: NetProxy, client: httpx.AsyncClient) -> None:
        proxy.inject(Fault.stall())
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/echo", content=b"nobody hears this")
        assert server.requests == 0
        assert proxy.stats.faults_applied == ["stall"]

    run(scenario, timeout=0.5)


def test_a_slow_body_still_arrives_whole() -> None:
    async def scenario(server: EchoServer, proxy: NetProxy, client: httpx.AsyncClient) -> None:
        proxy.inject(Fault.slow_body(bytes_per_second=20_000))
        response = await client.get("/?size=3000")
        assert response.content == b"x" * 3000
        assert proxy.stats.faults_applied == ["slow_body"]

    run(scenario)


def test_close_after_cuts_the_response_short() -> None:
    async def scenario(server: EchoServer, proxy: NetProxy, client: httpx.AsyncClient) -> None:
        proxy.inject(Fault.close_after(100))
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/?size=5000")
        assert server.requests == 1  # the server answered; the client got a part of it
        assert proxy.stats.bytes_down == 100
        assert (await client.get("/?size=10")).content == b"x" * 10

    run(scenario)


def test_a_fault_for_every_exchange_until_cleared() -> None:
    async def scenario(server: EchoServer, proxy: NetProxy, client: httpx.AsyncClient) -> None:
        proxy.inject(Fault.reset(), times=None)
        for _ in range(2):
            with pytest.raises(httpx.TransportError):
                await client.get("/?size=1")
        proxy.clear()
        assert (await client.get("/?size=1")).content == b"x"
        assert proxy.stats.faults_applied == ["reset", "reset"]

    run(scenario)


def test_in_a_thread_for_synchronous_clients() -> None:
    async def serve_until(stop: asyncio.Event, ready: asyncio.Future[int]) -> None:
        async with EchoServer() as server:
            ready.set_result(server.port)
            await stop.wait()

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready: asyncio.Future[int] = loop.create_future()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve_until(stop, ready),))
    thread.start()
    try:
        port = asyncio.run_coroutine_threadsafe(asyncio.wait_for(ready, 5), loop).result(5)
        with running_in_thread("127.0.0.1", port, latency_ms=10) as proxy:
            response = httpx.post(f"{proxy.url}/echo", content=b"sync", timeout=10)
            assert response.content == b"sync"
            assert proxy.stats.delays_applied >= 1
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
        loop.close()


def test_the_upstream_option_names_host_and_port() -> None:
    assert _upstream("127.0.0.1:8080") == ("127.0.0.1", 8080)
    with pytest.raises(argparse.ArgumentTypeError, match="HOST:PORT"):
        _upstream("8080")
    with pytest.raises(ValueError, match="bytes_per_second"):
        Fault.slow_body(0)
