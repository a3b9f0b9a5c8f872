"""Build, start, stop and reset the local HAPI FHIR JPA server (``sandbox/hapi/``).

One server per state directory. By default each port gets its own state directory,
``$FHIR_BRIDGE_SANDBOX_DIR/port-<port>`` (``~/.local/state/fhir-bridge/sandbox/port-<port>``
when the variable is unset), holding:

- ``server.pid``    pid, port, options and jar of the running server (removed by :func:`stop`)
- ``options.json``  the options of the last start, kept so that :func:`reset` can reuse them
- ``server.log``    the server's stdout and stderr
- ``data/``         the H2 database files (:func:`reset` deletes them)

Only a process started here is ever stopped: its pid comes from ``server.pid`` and its
command line must still name our jar and this state directory's data folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from fhir_bridge.errors import BridgeError

HAPI_VERSION = "8.8.0"
"""The HAPI FHIR version the sandbox is built with (the parent version in ``pom.xml``)."""

JAR_NAME = "fhir-bridge-hapi-sandbox.jar"
STATE_DIR_ENV = "FHIR_BRIDGE_SANDBOX_DIR"
JAR_ENV = "FHIR_BRIDGE_SANDBOX_JAR"
JAVA_OPTS_ENV = "FHIR_BRIDGE_SANDBOX_JAVA_OPTS"
DEFAULT_PORT = 8080
START_TIMEOUT = 180.0
BUILD_TIMEOUT = 1800.0
MIN_JAVA = 17
JAVA_OPTIONS: tuple[str, ...] = (
    "-Xmx1536m",
    "-XX:+UseSerialGC",
    "-Djava.awt.headless=true",
    "-Dfile.encoding=UTF-8",
)
"""JVM options: a modest heap, and the serial collector (least memory on a 2-core machine)."""

_LOG_TAIL_LINES = 30
_PROJECT = Path(__file__).resolve().parents[2] / "sandbox" / "hapi"
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}

Progress = Callable[[str], None]


class SandboxError(BridgeError):
    """The sandbox could not do what was asked.

    ``message`` says what failed; ``log_tail`` holds the last lines of the Maven output or of
    the server log when they explain it (empty otherwise).
    """

    def __init__(self, message: str, log_tail: str = "") -> None:
        self.message = message
        self.log_tail = log_tail
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class SandboxInfo:
    """What is known about one sandbox (one state directory)."""

    port: int
    base_url: str
    running: bool
    """A process started here is alive."""
    healthy: bool
    """``GET {base_url}/metadata`` answered 200."""
    pid: int | None
    validate: bool
    state_dir: Path
    log_file: Path
    data_dir: Path


# --- paths -------------------------------------------------------------------------------


def default_state_dir() -> Path:
    """Root of the sandboxes' state: ``$FHIR_BRIDGE_SANDBOX_DIR`` or the XDG state folder."""
    configured = os.environ.get(STATE_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".local" / "state" / "fhir-bridge" / "sandbox"


def instance_dir(port: int = DEFAULT_PORT, state_dir: Path | None = None) -> Path:
    """The state directory of the sandbox on ``port`` (``state_dir`` itself when given)."""
    folder = Path(state_dir) if state_dir is not None else default_state_dir() / f"port-{port}"
    return folder.expanduser().resolve()


def base_url(port: int = DEFAULT_PORT) -> str:
    """FHIR base URL of a sandbox on ``port``."""
    return f"http://127.0.0.1:{port}/fhir"


def project_dir() -> Path:
    """The Maven project of the sandbox (``sandbox/hapi`` in the source tree)."""
    return _PROJECT


def jar_path() -> Path:
    """Where the server jar is: ``$FHIR_BRIDGE_SANDBOX_JAR``, else the Maven build output."""
    configured = os.environ.get(JAR_ENV)
    if configured:
        return Path(configured).expanduser()
    return _PROJECT / "target" / JAR_NAME


def pom_hapi_version(pom: Path | None = None) -> str:
    """The HAPI version pinned in ``pom.xml`` (the ``hapi-fhir`` parent's version)."""
    text = (pom or _PROJECT / "pom.xml").read_text(encoding="utf-8")
    found = re.search(
        r"<parent>\s*<groupId>ca\.uhn\.hapi\.fhir</groupId>\s*<artifactId>hapi-fhir</artifactId>"
        r"\s*<version>([^<]+)</version>",
        text,
    )
    if found is None:
        raise SandboxError(f"no ca.uhn.hapi.fhir:hapi-fhir parent version in {pom}")
    return found.group(1).strip()


# --- small helpers -----------------------------------------------------------------------


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    if lines <= 0 or not path.is_file():
        return ""
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 256 * 1024))
        text = handle.read().decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock, so two processes do not build or start at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(path.suffix + ".tmp")
    scratch.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    scratch.replace(path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


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


def _is_ours(pid: int, data_dir: Path) -> bool:
    """``pid`` is alive and is our jar serving this state directory's database."""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)
        return False
    args = _cmdline(pid)
    if not args:
        return False
    return any(a.endswith(JAR_NAME) for a in args) and f"--data-dir={data_dir}" in args


def _answers(url: str, timeout: float = 3.0) -> bool:
    try:
        response = httpx.get(
            f"{url}/metadata", timeout=timeout, headers={"Accept": "application/fhir+json"}
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _port_in_use(port: int) -> bool:
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


def _java() -> str:
    """The java executable (``$JAVA_HOME/bin/java`` first), checked to be Java 17 or newer."""
    home = os.environ.get("JAVA_HOME")
    candidate = Path(home) / "bin" / "java" if home else None
    java = str(candidate) if candidate and candidate.is_file() else shutil.which("java")
    if java is None:
        raise SandboxError(
            f"Java was not found (no java on PATH, no $JAVA_HOME/bin/java); the HAPI sandbox "
            f"needs Java {MIN_JAVA} or newer"
        )
    try:
        done = subprocess.run(
            [java, "-version"], capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(f"could not run {java} -version: {exc}") from None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if found is None:
        raise SandboxError(f"could not read the Java version from {java} -version", done.stderr)
    major = int(found.group(1))
    if major == 1 and found.group(2):  # "1.8.0_..." style
        major = int(found.group(2))
    if major < MIN_JAVA:
        raise SandboxError(f"{java} is Java {major}; the HAPI sandbox needs Java {MIN_JAVA}+")
    return java


def _java_options() -> list[str]:
    extra = os.environ.get(JAVA_OPTS_ENV, "").split()
    return [*JAVA_OPTIONS, *extra]


# --- build -------------------------------------------------------------------------------


def _jar_is_stale(jar: Path) -> bool:
    if not jar.is_file():
        return True
    built = jar.stat().st_mtime
    sources = [_PROJECT / "pom.xml", *(_PROJECT / "src").rglob("*")]
    return any(p.is_file() and p.stat().st_mtime > built for p in sources)


def build(force: bool = False, progress: Progress | None = None) -> Path:
    """Build the server jar with Maven when it is missing or older than its sources.

    Runs ``mvn -q -B package -DskipTests`` in ``sandbox/hapi`` (the local Maven cache is
    reused); returns the jar. ``$FHIR_BRIDGE_SANDBOX_JAR`` names a prebuilt jar instead.
    """
    if os.environ.get(JAR_ENV):
        jar = jar_path()
        if not jar.is_file():
            raise SandboxError(f"${JAR_ENV} names {jar}, which does not exist")
        return jar
    jar = jar_path()
    if not (_PROJECT / "pom.xml").is_file():
        raise SandboxError(
            f"the sandbox's Maven project is not at {_PROJECT} (fhir-bridge must run from a "
            f"source checkout, or set ${JAR_ENV} to a built jar)"
        )
    root = default_state_dir()
    with _locked(root / "build.lock"):
        if not force and not _jar_is_stale(jar):
            return jar
        mvn = shutil.which("mvn")
        if mvn is None:
            raise SandboxError(
                "Maven (mvn) was not found on PATH; it is needed once to build the HAPI sandbox"
            )
        _java()
        log = root / "build.log"
        _say(progress, f"building the HAPI FHIR {HAPI_VERSION} sandbox with Maven (log: {log})")
        started = time.monotonic()
        with log.open("wb") as out:
            try:
                done = subprocess.run(
                    [mvn, "-q", "-B", "package", "-DskipTests"],
                    cwd=_PROJECT,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    check=False,
                    timeout=BUILD_TIMEOUT,
                )
            except subprocess.TimeoutExpired:
                raise SandboxError(
                    f"the Maven build took longer than {BUILD_TIMEOUT:.0f} s", _tail(log, 40)
                ) from None
        if done.returncode != 0 or not jar.is_file():
            text = _tail(log, 400)
            if "Could not resolve" in text or "Could not find artifact" in text:
                what = "Maven could not resolve the sandbox's dependencies"
            elif "COMPILATION ERROR" in text or "Compilation failure" in text:
                what = "the sandbox's Java sources do not compile"
            else:
                what = f"the Maven build failed (exit code {done.returncode})"
            raise SandboxError(f"{what}; full output in {log}", _tail(log, 40))
        _say(progress, f"built {jar.name} in {time.monotonic() - started:.0f} s")
        return jar


# --- status ------------------------------------------------------------------------------


def _info(port: int, folder: Path, pid: int | None, validate: bool) -> SandboxInfo:
    url = base_url(port)
    running = pid is not None
    return SandboxInfo(
        port=port,
        base_url=url,
        running=running,
        healthy=running and _answers(url),
        pid=pid,
        validate=validate,
        state_dir=folder,
        log_file=folder / "server.log",
        data_dir=folder / "data",
    )


def _running_pid(folder: Path) -> tuple[int | None, dict[str, Any]]:
    """The pid of the live server of ``folder`` (a stale pid file is removed)."""
    pid_file = folder / "server.pid"
    state = _read_json(pid_file)
    pid = state.get("pid")
    if isinstance(pid, int) and _is_ours(pid, folder / "data"):
        return pid, state
    if pid_file.exists():
        pid_file.unlink(missing_ok=True)
    return None, state


def status(port: int = DEFAULT_PORT, state_dir: Path | None = None) -> SandboxInfo:
    """Whether the sandbox of this port (or state directory) runs, and whether it answers."""
    folder = instance_dir(port, state_dir)
    pid, state = _running_pid(folder)
    options = state if pid is not None else _read_json(folder / "options.json")
    recorded_port = options.get("port")
    if state_dir is not None and isinstance(recorded_port, int):
        port = recorded_port
    return _info(port, folder, pid, bool(options.get("validate", False)))


# --- start / stop ------------------------------------------------------------------------


def start(
    port: int = DEFAULT_PORT,
    validate: bool = False,
    state_dir: Path | None = None,
    *,
    timeout: float = START_TIMEOUT,
    progress: Progress | None = None,
) -> SandboxInfo:
    """Start the sandbox in the background and wait until ``/fhir/metadata`` answers 200.

    Builds the jar first when needed. When this state directory's server already runs, it is
    returned as it is (after waiting for it to answer); asking for another ``validate`` setting
    than the running one is an error. The server binds 127.0.0.1 only.
    """
    folder = instance_dir(port, state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder / "start.lock"):
        pid, state = _running_pid(folder)
        if pid is not None:
            running_port = int(state.get("port", port))
            running_validate = bool(state.get("validate", False))
            if running_port != port:
                raise SandboxError(
                    f"the sandbox of {folder} already runs on port {running_port}; stop it first"
                )
            if running_validate != validate:
                raise SandboxError(
                    f"a sandbox already runs on port {port} with validation "
                    f"{'on' if running_validate else 'off'}; stop or reset it first"
                )
            _wait_until_ready(port, pid, folder, timeout)
            return _info(port, folder, pid, validate)

        if _port_in_use(port):
            url = base_url(port)
            if _answers(url, timeout=1.0):
                raise SandboxError(
                    f"port {port} is taken by a FHIR server that this state directory did not "
                    f"start ({url}); stop it, or choose another port"
                )
            raise SandboxError(f"port {port} on 127.0.0.1 is already in use by another program")

        java = _java()
        jar = build(progress=progress)
        data_dir = folder / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        log_file = folder / "server.log"
        command = [
            java,
            *_java_options(),
            "-jar",
            str(jar),
            f"--port={port}",
            f"--data-dir={data_dir}",
        ]
        if validate:
            command.append("--validate")
        _say(progress, f"starting the HAPI FHIR sandbox on port {port} (log: {log_file})")
        with log_file.open("wb") as log:
            child = subprocess.Popen(
                command,
                cwd=folder,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() signals the group
            )
        _CHILDREN[child.pid] = child
        options = {"port": port, "validate": validate}
        _write_json(folder / "options.json", options)
        _write_json(
            folder / "server.pid",
            {**options, "pid": child.pid, "jar": str(jar), "started_at": time.time()},
        )
        try:
            _wait_until_ready(port, child.pid, folder, timeout)
        except SandboxError:
            _terminate(child.pid, folder / "data", grace=10.0)
            (folder / "server.pid").unlink(missing_ok=True)
            raise
        return _info(port, folder, child.pid, validate)


def _wait_until_ready(port: int, pid: int, folder: Path, timeout: float) -> None:
    url = base_url(port)
    log_file = folder / "server.log"
    deadline = time.monotonic() + timeout
    while True:
        if not _is_ours(pid, folder / "data"):
            child = _CHILDREN.get(pid)
            code = f" with exit code {child.returncode}" if child is not None else ""
            raise SandboxError(
                f"the HAPI sandbox on port {port} exited{code} while starting (log: {log_file})",
                _tail(log_file),
            )
        if _answers(url):
            return
        if time.monotonic() >= deadline:
            raise SandboxError(
                f"the HAPI sandbox on port {port} did not answer {url}/metadata within "
                f"{timeout:.0f} s (log: {log_file})",
                _tail(log_file),
            )
        time.sleep(0.5)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:  # started with its own session: signal the whole group
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _terminate(pid: int, data_dir: Path, grace: float) -> None:
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _is_ours(pid, data_dir):
        time.sleep(0.2)
    if _is_ours(pid, data_dir):
        _signal(pid, signal.SIGKILL)
        kill_deadline = time.monotonic() + 10.0
        while time.monotonic() < kill_deadline and _is_ours(pid, data_dir):
            time.sleep(0.1)
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5.0)


def stop(port: int = DEFAULT_PORT, state_dir: Path | None = None, *, timeout: float = 30.0) -> bool:
    """Stop the server started by this state directory; False when none was running.

    Sends SIGTERM (HAPI shuts down cleanly and closes the database), then SIGKILL after
    ``timeout`` seconds. Never signals a process whose command line is not our jar.
    """
    folder = instance_dir(port, state_dir)
    with _locked(folder / "start.lock"):
        pid, _ = _running_pid(folder)
        if pid is None:
            return False
        _terminate(pid, folder / "data", grace=timeout)
        (folder / "server.pid").unlink(missing_ok=True)
        return True


def logs(lines: int = 50, port: int = DEFAULT_PORT, state_dir: Path | None = None) -> str:
    """The last ``lines`` lines of the server log ("" when there is none)."""
    return _tail(instance_dir(port, state_dir) / "server.log", lines)


def reset(
    port: int = DEFAULT_PORT,
    state_dir: Path | None = None,
    *,
    timeout: float = START_TIMEOUT,
    progress: Progress | None = None,
) -> SandboxInfo:
    """Stop the server, delete its H2 database, and start it again, empty, with the options
    it last ran with (validation on or off)."""
    folder = instance_dir(port, state_dir)
    options = _read_json(folder / "options.json")
    validate = bool(options.get("validate", False))
    stop(port, state_dir)
    shutil.rmtree(folder / "data", ignore_errors=True)
    _say(progress, f"deleted the sandbox database in {folder / 'data'}")
    return start(port, validate, state_dir, timeout=timeout, progress=progress)


# --- talking to a server -----------------------------------------------------------------


def server_software(url: str, timeout: float = 30.0) -> tuple[str, str]:
    """``software.name`` and ``software.version`` from a FHIR server's CapabilityStatement.

    Raises :class:`SandboxError` when the server does not answer with a CapabilityStatement.
    """
    target = f"{url.rstrip('/')}/metadata"
    try:
        response = httpx.get(target, timeout=timeout, headers={"Accept": "application/fhir+json"})
    except httpx.HTTPError as exc:
        raise SandboxError(f"no answer from {target}: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise SandboxError(f"{target} answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise SandboxError(f"{target} did not answer JSON") from None
    if not isinstance(body, dict) or body.get("resourceType") != "CapabilityStatement":
        raise SandboxError(f"{target} did not answer a CapabilityStatement")
    software = body.get("software")
    if not isinstance(software, dict):
        return "", ""
    return str(software.get("name", "")), str(software.get("version", ""))
