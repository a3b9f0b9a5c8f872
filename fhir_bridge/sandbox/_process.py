"""The server process: is a pid ours, is the port free, waiting until it answers, and
stopping it (its whole process group) without ever signalling a process that is not ours."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from ._error import SandboxError
from ._files import tail
from ._paths import JAR_NAME, base_url
from ._probe import answers

CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
"""The servers started by this process, so that their exit codes can be read."""


def _cmdline(pid: int) -> list[str] | None:
    """The command line of ``pid``, or None when no such live process exists."""
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            stat = (proc / "stat").read_text()
            raw = (proc / "cmdline").read_bytes()
        except OSError:
            return None
        state = stat.rpartition(")")[2].split()[:1]
        if state == ["Z"]:  # exited, not yet reaped
            return None
        return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    try:  # no /proc (macOS): ask ps
        done = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = done.stdout.strip()
    return text.split() if done.returncode == 0 and text else None


def is_ours(pid: int, data_dir: Path) -> bool:
    """``pid`` is alive and is our jar serving this state directory's database."""
    child = CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        CHILDREN.pop(pid, None)
        return False
    args = _cmdline(pid)
    if not args:
        return False
    return any(a.endswith(JAR_NAME) for a in args) and f"--data-dir={data_dir}" in args


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # as Tomcat does: a port with only TIME_WAIT connections left is free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_until_ready(port: int, pid: int, folder: Path, timeout: float) -> None:
    url = base_url(port)
    log_file = folder / "server.log"
    deadline = time.monotonic() + timeout
    while True:
        if not is_ours(pid, folder / "data"):
            child = CHILDREN.get(pid)
            code = f" with exit code {child.returncode}" if child is not None else ""
            raise SandboxError(
                f"the HAPI sandbox on port {port} exited{code} while starting (log: {log_file})",
                tail(log_file),
            )
        if answers(url):
            return
        if time.monotonic() >= deadline:
            raise SandboxError(
                f"the HAPI sandbox on port {port} did not answer {url}/metadata within "
                f"{timeout:.0f} s (log: {log_file})",
                tail(log_file),
            )
        time.sleep(0.5)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:  # started with its own session: signal the whole group
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def terminate(pid: int, data_dir: Path, grace: float) -> None:
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and is_ours(pid, data_dir):
        time.sleep(0.2)
    if is_ours(pid, data_dir):
        _signal(pid, signal.SIGKILL)
        kill_deadline = time.monotonic() + 10.0
        while time.monotonic() < kill_deadline and is_ours(pid, data_dir):
            time.sleep(0.1)
    child = CHILDREN.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5.0)
