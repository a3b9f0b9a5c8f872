"""The local authorization server: Keycloak (its Quarkus server distribution) for SMART
Backend Services, started beside the HAPI sandbox profiles that require tokens.

    from fhir_bridge.sandbox import keycloak

    info = keycloak.start()                 # fetched with Maven and unpacked on first use
    with keycloak.admin(info.port) as admin:
        admin.ensure_realm()
    keycloak.stop()

One server per state directory, ``$FHIR_BRIDGE_SANDBOX_DIR/port-<port>`` by default (port
8180), holding:

- ``keycloak-<version>/``  the unpacked distribution; its ``data/`` is the dev-file database
- ``keycloak.pid``        pid and port of the running server (removed by :func:`stop`)
- ``admin.json``          the bootstrap admin's generated name and password (mode 0600; never
                          printed or logged)
- ``server.log``          the server's output

Only a process started here is ever stopped: its command line must name this distribution.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ._build import Progress, say
from ._error import SandboxError
from ._files import locked, read_json, tail, write_json
from ._java import find_java
from ._keycloak_admin import KeycloakAdmin
from ._paths import default_state_dir, instance_dir
from ._process import CHILDREN, _cmdline, _signal, port_in_use

KEYCLOAK_VERSION = "26.5.6"
KEYCLOAK_PORT = 8180
ARTIFACT = f"org.keycloak:keycloak-quarkus-dist:{KEYCLOAK_VERSION}:zip"
ZIP_ENV = "FHIR_BRIDGE_KEYCLOAK_ZIP"
HEAP_OPTIONS = "-Xms64m -Xmx512m"
START_TIMEOUT = 300.0
FETCH_TIMEOUT = 1200.0


@dataclass(frozen=True, slots=True)
class KeycloakInfo:
    """What is known about one Keycloak server (one state directory)."""

    port: int
    base_url: str
    """``http://127.0.0.1:<port>``"""
    running: bool
    healthy: bool
    """The master realm's OpenID configuration answered 200."""
    pid: int | None
    state_dir: Path
    log_file: Path
    started_in: float | None = None
    """Seconds from launch to ready, when this call started it."""


def base_url(port: int = KEYCLOAK_PORT) -> str:
    return f"http://127.0.0.1:{port}"


# --- the distribution --------------------------------------------------------------------


def _zip_path() -> Path:
    configured = os.environ.get(ZIP_ENV)
    if configured:
        return Path(configured).expanduser()
    group, artifact, version, _ = ARTIFACT.split(":")
    return (
        Path.home()
        / ".m2"
        / "repository"
        / Path(*group.split("."))
        / artifact
        / version
        / f"{artifact}-{version}.zip"
    )


def fetch(progress: Progress | None = None) -> Path:
    """The distribution's zip, fetched into the local Maven repository when missing
    (``mvn dependency:get``); ``$FHIR_BRIDGE_KEYCLOAK_ZIP`` names one instead."""
    archive = _zip_path()
    if archive.is_file() or os.environ.get(ZIP_ENV):
        if not archive.is_file():
            raise SandboxError(f"${ZIP_ENV} names {archive}, which does not exist")
        return archive
    mvn = shutil.which("mvn")
    if mvn is None:
        raise SandboxError("Maven (mvn) was not found on PATH; it fetches Keycloak once")
    root = default_state_dir()
    log = root / "keycloak-fetch.log"
    with locked(root / "keycloak-fetch.lock"):
        if archive.is_file():
            return archive
        say(progress, f"fetching Keycloak {KEYCLOAK_VERSION} with Maven (log: {log})")
        with log.open("wb") as out:
            try:
                done = subprocess.run(
                    [
                        mvn,
                        "-q",
                        "-B",
                        "dependency:get",
                        f"-Dartifact={ARTIFACT}",
                        "-Dtransitive=false",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    check=False,
                    timeout=FETCH_TIMEOUT,
                    cwd=root,
                )
            except subprocess.TimeoutExpired:
                raise SandboxError("fetching Keycloak took too long", tail(log)) from None
        if done.returncode != 0 or not archive.is_file():
            raise SandboxError(f"Maven could not fetch {ARTIFACT}; output in {log}", tail(log))
    return archive


def distribution(folder: Path, progress: Progress | None = None) -> Path:
    """The distribution unpacked in ``folder`` (once; later calls reuse it)."""
    home = folder / f"keycloak-{KEYCLOAK_VERSION}"
    if (home / "bin" / "kc.sh").is_file():
        return home
    archive = fetch(progress)
    say(progress, f"unpacking Keycloak into {folder}")
    scratch = folder / "unpacking"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as packed:
            for member in packed.infolist():
                target = Path(packed.extract(member, scratch))
                mode = (member.external_attr >> 16) & 0o777
                if mode and not member.is_dir():
                    target.chmod(mode)
    except (OSError, zipfile.BadZipFile) as exc:
        shutil.rmtree(scratch, ignore_errors=True)
        raise SandboxError(f"could not unpack {archive}: {type(exc).__name__}") from None
    (scratch / home.name).replace(home)
    shutil.rmtree(scratch, ignore_errors=True)
    return home


# --- the process -------------------------------------------------------------------------


def _owned(pid: int, home: Path) -> bool:
    """``pid`` is alive and runs this state directory's distribution."""
    child = CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        CHILDREN.pop(pid, None)
        return False
    args = _cmdline(pid)
    marker = f"{home}/bin/"
    return bool(args) and any(marker in a for a in args or ())


def _running_pid(folder: Path) -> tuple[int | None, dict[str, Any]]:
    pid_file = folder / "keycloak.pid"
    state = read_json(pid_file)
    pid = state.get("pid")
    home = folder / f"keycloak-{KEYCLOAK_VERSION}"
    if isinstance(pid, int) and _owned(pid, home):
        return pid, state
    pid_file.unlink(missing_ok=True)
    return None, state


def answers(url: str, timeout: float = 3.0) -> bool:
    """Keycloak's master realm answers its OpenID configuration."""
    try:
        response = httpx.get(
            f"{url}/realms/master/.well-known/openid-configuration", timeout=timeout
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _info(
    port: int, folder: Path, pid: int | None, started_in: float | None = None
) -> KeycloakInfo:
    url = base_url(port)
    return KeycloakInfo(
        port=port,
        base_url=url,
        running=pid is not None,
        healthy=pid is not None and answers(url),
        pid=pid,
        state_dir=folder,
        log_file=folder / "server.log",
        started_in=started_in,
    )


def status(port: int = KEYCLOAK_PORT, state_dir: Path | None = None) -> KeycloakInfo:
    """Whether the Keycloak of this port (or state directory) runs, and whether it answers."""
    folder = instance_dir(port, state_dir)
    pid, state = _running_pid(folder)
    return _info(int(state.get("port", port)) if pid else port, folder, pid)


def _credentials(folder: Path) -> tuple[str, str]:
    """The bootstrap admin of this state directory, generated on first use (file 0600)."""
    path = folder / "admin.json"
    found = read_json(path)
    user, password = found.get("username"), found.get("password")
    if isinstance(user, str) and isinstance(password, str):
        return user, password
    user, password = "sandbox-admin", secrets.token_urlsafe(24)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump({"username": user, "password": password}, handle)
    return user, password


def start(
    port: int = KEYCLOAK_PORT,
    state_dir: Path | None = None,
    *,
    timeout: float = START_TIMEOUT,
    progress: Progress | None = None,
) -> KeycloakInfo:
    """Start Keycloak (``kc.sh start-dev``, 127.0.0.1 only) and wait until it answers.

    Fetches and unpacks it on first use. A server this state directory already runs is
    returned as it is, once it answers."""
    folder = instance_dir(port, state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with locked(folder / "keycloak.lock"):
        pid, state = _running_pid(folder)
        if pid is not None:
            running_port = int(state.get("port", port))
            _wait_until_ready(running_port, pid, folder, timeout)
            return _info(running_port, folder, pid)
        if port_in_use(port):
            raise SandboxError(f"port {port} on 127.0.0.1 is already in use by another program")
        find_java()
        home = distribution(folder, progress)
        user, password = _credentials(folder)
        log_file = folder / "server.log"
        env = {
            **os.environ,
            "KC_BOOTSTRAP_ADMIN_USERNAME": user,
            "KC_BOOTSTRAP_ADMIN_PASSWORD": password,
            "JAVA_OPTS_KC_HEAP": HEAP_OPTIONS,
        }
        command = [
            str(home / "bin" / "kc.sh"),
            "start-dev",
            f"--http-port={port}",
            "--http-host=127.0.0.1",
        ]
        say(progress, f"starting Keycloak on port {port} (log: {log_file})")
        launched = time.monotonic()
        with log_file.open("wb") as log:
            child = subprocess.Popen(
                command,
                cwd=folder,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        CHILDREN[child.pid] = child
        write_json(
            folder / "keycloak.pid",
            {
                "pid": child.pid,
                "port": port,
                "version": KEYCLOAK_VERSION,
                "started_at": time.time(),
            },
        )
        try:
            _wait_until_ready(port, child.pid, folder, timeout)
        except SandboxError:
            _terminate(child.pid, home, grace=10.0)
            (folder / "keycloak.pid").unlink(missing_ok=True)
            raise
        started_in = time.monotonic() - launched
        say(progress, f"Keycloak ready in {started_in:.0f} s")
        return _info(port, folder, child.pid, started_in)


def _wait_until_ready(port: int, pid: int, folder: Path, timeout: float) -> None:
    url = base_url(port)
    home = folder / f"keycloak-{KEYCLOAK_VERSION}"
    log_file = folder / "server.log"
    deadline = time.monotonic() + timeout
    while True:
        if not _owned(pid, home):
            raise SandboxError(
                f"Keycloak on port {port} exited while starting (log: {log_file})", tail(log_file)
            )
        if answers(url):
            return
        if time.monotonic() >= deadline:
            raise SandboxError(
                f"Keycloak on port {port} did not answer within {timeout:.0f} s (log: {log_file})",
                tail(log_file),
            )
        time.sleep(1.0)


def _terminate(pid: int, home: Path, grace: float) -> None:
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _owned(pid, home):
        time.sleep(0.2)
    if _owned(pid, home):
        _signal(pid, signal.SIGKILL)
    child = CHILDREN.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=10.0)


def stop(
    port: int = KEYCLOAK_PORT, state_dir: Path | None = None, *, timeout: float = 30.0
) -> bool:
    """Stop the Keycloak this state directory started; False when none was running."""
    folder = instance_dir(port, state_dir)
    with locked(folder / "keycloak.lock"):
        pid, _ = _running_pid(folder)
        if pid is None:
            return False
        _terminate(pid, folder / f"keycloak-{KEYCLOAK_VERSION}", grace=timeout)
        (folder / "keycloak.pid").unlink(missing_ok=True)
        return True


def admin(port: int = KEYCLOAK_PORT, state_dir: Path | None = None) -> KeycloakAdmin:
    """The admin API of this state directory's Keycloak, logged in as its bootstrap admin."""
    folder = instance_dir(port, state_dir)
    pid, state = _running_pid(folder)
    if pid is None:
        raise SandboxError(f"Keycloak does not run on port {port}; start it first")
    user, password = _credentials(folder)
    return KeycloakAdmin(base_url(int(state.get("port", port))), user, password)
