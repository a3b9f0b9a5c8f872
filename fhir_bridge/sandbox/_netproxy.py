"""A network between a client and a server: a TCP proxy with latency per round trip and faults.

Every byte is held for the one-way delay (half the round trip) from the moment the proxy read it,
in each direction, and the bytes behind it are not held again: a request/response exchange pays
one round trip however many chunks its bodies take, as on a real link (and unlike a proxy that
sleeps before every chunk). Bandwidth is not limited.

Faults are injected on demand, for the next exchanges (a request's first bytes after the server
spoke, or the first bytes of a connection) on any connection:

- ``Fault.reset()``: the client's connection is reset (RST) when the request starts;
- ``Fault.stall()``: the request is swallowed and nothing ever answers (a timeout);
- ``Fault.slow_body(bytes_per_second)``: the response trickles at that rate;
- ``Fault.close_after(n)``: the connection is closed after ``n`` bytes of the response.

    proxy = NetProxy("127.0.0.1", 8080, latency_ms=25)
    async with proxy:                            # listens on proxy.port (a free one by default)
        proxy.inject(Fault.reset(), times=1)
        ...                                      # talk to proxy.url

    with running_in_thread("127.0.0.1", 8080, latency_ms=25) as proxy:   # for synchronous code
        ...

``python -m fhir_bridge.sandbox._netproxy --upstream 127.0.0.1:8080 --port 8141 --latency-ms 25``
runs one in its own process (the benchmark does, so that the client under test does not share a
CPU with it through the GIL) until it is interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["reset", "stall", "slow_body", "close_after"]
CHUNK = 65536
_EOF = b""


@dataclass(frozen=True)
class Fault:
    """What happens to one exchange: see the module's docstring."""

    kind: FaultKind
    bytes_per_second: int = 0
    after_bytes: int = 0

    @classmethod
    def reset(cls) -> Fault:
        return cls("reset")

    @classmethod
    def stall(cls) -> Fault:
        return cls("stall")

    @classmethod
    def slow_body(cls, bytes_per_second: int) -> Fault:
        if bytes_per_second < 1:
            raise ValueError("bytes_per_second must be at least 1")
        return cls("slow_body", bytes_per_second=bytes_per_second)

    @classmethod
    def close_after(cls, after_bytes: int) -> Fault:
        if after_bytes < 0:
            raise ValueError("after_bytes must not be negative")
        return cls("close_after", after_bytes=after_bytes)


@dataclass
class ProxyStats:
    """What went through: counts, and the wall-clock time (``time.time()``) at which each
    exchange's request started, so a caller can tell when a request reached the proxy."""

    connections: int = 0
    exchanges: int = 0
    delays_applied: int = 0  # chunks that waited for the one-way delay
    bytes_up: int = 0  # client to server
    bytes_down: int = 0  # server to client
    faults_applied: list[FaultKind] = field(default_factory=list)
    request_starts: list[float] = field(default_factory=list)


class _Exchange:
    """One connection's state: the fault of its current exchange, and who spoke last."""

    def __init__(self) -> None:
        self.fault: Fault | None = None
        self.server_spoke = True  # the first client bytes start an exchange
        self.sent_down = 0  # response bytes of the current exchange


class NetProxy:
    """Listens on ``host:port`` and forwards every connection to ``upstream``."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        latency_ms: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.latency_ms = latency_ms
        self.host = host
        self.port = port
        self.stats = ProxyStats()
        self._faults: list[Fault] = []
        self._forever: Fault | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ control

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def one_way_seconds(self) -> float:
        return max(self.latency_ms, 0.0) / 2000.0

    def inject(self, fault: Fault, times: int | None = 1) -> None:
        """``fault`` for the next ``times`` exchanges (``None``: every one until ``clear``)."""
        if times is None:
            self._forever = fault
        else:
            self._faults.extend([fault] * times)

    def clear(self) -> None:
        self._faults.clear()
        self._forever = None

    def _next_fault(self) -> Fault | None:
        if self._faults:
            return self._faults.pop(0)
        return self._forever

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> NetProxy:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ forwarding

    async def _connection(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.stats.connections += 1
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
            state = _Exchange()
            await asyncio.gather(
                self._pipe(client_reader, upstream_writer, state, up=True, peer=client_writer),
                self._pipe(upstream_reader, client_writer, state, up=False, peer=upstream_writer),
            )
        except (OSError, asyncio.IncompleteReadError):
            pass  # either side went away: so does the other
        except asyncio.CancelledError:
            pass  # the proxy stops: this connection's task ends quietly, as the server's own
        finally:
            for writer in (client_writer, upstream_writer):
                if writer is not None:
                    writer.close()
            self._tasks.discard(task)

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        state: _Exchange,
        *,
        up: bool,
        peer: asyncio.StreamWriter,
    ) -> None:
        """Read from one side, hold each chunk until its due time, write it to the other.

        ``writer`` is the other side of ``reader``'s connection pair; ``peer`` is the writer of
        ``reader``'s own side (the client's, when ``up``)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue()

        reading = asyncio.ensure_future(
            self._read(reader, writer, state, up=up, peer=peer, queue=queue)
        )
        try:
            while True:
                due, data = await queue.get()
                if data is None:
                    break
                wait = due - loop.time()
                if wait > 0:
                    self.stats.delays_applied += 1
                    await asyncio.sleep(wait)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    break
                if up:
                    self.stats.bytes_up += len(data)
                    writer.write(data)
                    await writer.drain()
                elif not await self._down(writer, data, state):
                    writer.close()  # the client sees the connection end mid-response
                    peer.transport.abort()
                    break
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await reading

    async def _read(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        state: _Exchange,
        *,
        up: bool,
        peer: asyncio.StreamWriter,
        queue: asyncio.Queue[tuple[float, bytes | None]],
    ) -> None:
        """Chunks as read, each with the time it is due on the other side; ``None`` last."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await reader.read(CHUNK)
                if up and data and state.server_spoke:
                    state.server_spoke = False
                    self._begin_exchange(state)
                    if state.fault is not None and state.fault.kind == "reset":
                        _reset(peer)
                        _reset(writer)
                        return
                if not up and data:
                    state.server_spoke = True
                stalled = up and state.fault is not None and state.fault.kind == "stall"
                if stalled and data:
                    continue  # swallowed: the server never hears of it
                await queue.put((loop.time() + self.one_way_seconds, data))
                if not data:
                    return
        except OSError:
            return
        finally:
            queue.put_nowait((loop.time(), None))  # after an EOF queued, it is never read

    def _begin_exchange(self, state: _Exchange) -> None:
        self.stats.exchanges += 1
        self.stats.request_starts.append(time.time())
        state.sent_down = 0
        state.fault = self._next_fault()
        if state.fault is not None:
            self.stats.faults_applied.append(state.fault.kind)

    async def _down(self, writer: asyncio.StreamWriter, data: bytes, state: _Exchange) -> bool:
        """Write response bytes as the exchange's fault says; False: the connection must end."""
        fault = state.fault
        if fault is not None and fault.kind == "close_after":
            room = fault.after_bytes - state.sent_down
            if room <= 0:
                return False
            data = data[:room]
        if fault is not None and fault.kind == "slow_body":
            piece = max(1, fault.bytes_per_second // 20)
            for start in range(0, len(data), piece):
                part = data[start : start + piece]
                writer.write(part)
                await writer.drain()
                await asyncio.sleep(len(part) / fault.bytes_per_second)
        else:
            writer.write(data)
            await writer.drain()
        state.sent_down += len(data)
        self.stats.bytes_down += len(data)
        return not (
            fault is not None
            and fault.kind == "close_after"
            and state.sent_down >= fault.after_bytes
        )


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset rather than a FIN: SO_LINGER on, timeout zero, then abort."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# ------------------------------------------------------------------ in a thread, in a process


@contextlib.contextmanager
def running_in_thread(
    upstream_host: str, upstream_port: int, *, latency_ms: float = 0.0, port: int = 0
) -> Iterator[NetProxy]:
    """A proxy on its own event loop in a daemon thread, for synchronous callers. ``inject``,
    ``clear`` and ``latency_ms`` may be changed from the caller's thread (each is one step)."""
    proxy = NetProxy(upstream_host, upstream_port, latency_ms=latency_ms, port=port)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failure: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(proxy.start())
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(proxy.stop())
        loop.close()

    thread = threading.Thread(target=serve, name="netproxy", daemon=True)
    thread.start()
    ready.wait()
    if failure:
        raise failure[0]
    try:
        yield proxy
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


def _upstream(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    return host, int(port)


async def _serve(args: argparse.Namespace) -> None:
    proxy = NetProxy(*args.upstream, latency_ms=args.latency_ms, host=args.host, port=args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with proxy:
        print(f"listening on {proxy.url}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m fhir_bridge.sandbox._netproxy")
    p.add_argument("--upstream", type=_upstream, required=True, help="HOST:PORT to forward to")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="where to listen (0: any free port)")
    p.add_argument("--latency-ms", type=float, default=0.0, help="round trip added, in ms")
    asyncio.run(_serve(p.parse_args(argv)))


if __name__ == "__main__":
    main()
