"""Start, stop, reset and inspect the local HAPI FHIR JPA server (``sandbox/hapi/``).

One server per state directory. By default each port gets its own state directory,
``$FHIR_BRIDGE_SANDBOX_DIR/port-<port>`` (``~/.local/state/fhir-bridge/sandbox/port-<port>``
when the variable is unset), holding:

- ``server.pid``    pid, port, options and jar of the running server (removed by :func:`stop`)
- ``options.json``  the options of the last start (validation, profile, SMART authorization
  server), kept so that :func:`reset` can reuse them
- ``server.log``    the server's stdout and stderr (``server.log.1``: the previous start's)
- ``data/``         the H2 database files (:func:`reset` deletes them)

Only a process started here is ever stopped: its pid comes from ``server.pid`` and its
command line must still name our jar and this state directory's data folder.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._build import Progress, build, say
from ._error import SandboxError
from ._files import locked, read_json, tail, write_json
from ._java import find_java, server_command
from ._options import DEFAULT_PROFILE, SmartServer, check_ig, check_profile
from ._paths import DEFAULT_PORT, base_url, instance_dir
from ._probe import answers
from ._process import CHILDREN, is_ours, port_in_use, terminate, wait_until_ready

START_TIMEOUT = 180.0


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
    profile: str = DEFAULT_PROFILE
    """What the server refuses, as an EHR of that kind does (``open``: nothing)."""
    smart: SmartServer | None = None
    """The authorization server whose tokens it demands (None: no authorization)."""
    ig: str | None = None
    """The implementation guide validation loads (``us-core-7``, ``us-core-6.1``; None: base R4)."""


# --- status ------------------------------------------------------------------------------


Options = tuple[bool, str, SmartServer | None, str | None]
"""validate, profile, SMART server, implementation guide."""


def _options(state: dict[str, Any]) -> Options:
    """The options as a state file records them (older files: open, no guide)."""
    profile = state.get("profile", DEFAULT_PROFILE)
    ig = state.get("ig")
    return (
        bool(state.get("validate", False)),
        profile if isinstance(profile, str) else DEFAULT_PROFILE,
        SmartServer.from_json(state.get("smart")),
        ig if isinstance(ig, str) else None,
    )


def _info(
    port: int,
    folder: Path,
    pid: int | None,
    options: Options,
) -> SandboxInfo:
    url = base_url(port)
    validate, profile, smart, ig = options
    running = pid is not None
    return SandboxInfo(
        port=port,
        base_url=url,
        running=running,
        healthy=running and answers(url),
        pid=pid,
        validate=validate,
        state_dir=folder,
        log_file=folder / "server.log",
        data_dir=folder / "data",
        profile=profile,
        smart=smart,
        ig=ig,
    )


def _running_pid(folder: Path) -> tuple[int | None, dict[str, Any]]:
    """The pid of the live server of ``folder`` (a stale pid file is removed)."""
    pid_file = folder / "server.pid"
    state = read_json(pid_file)
    pid = state.get("pid")
    if isinstance(pid, int) and is_ours(pid, folder / "data"):
        return pid, state
    if pid_file.exists():
        pid_file.unlink(missing_ok=True)
    return None, state


def status(port: int = DEFAULT_PORT, state_dir: Path | None = None) -> SandboxInfo:
    """Whether the sandbox of this port (or state directory) runs, and whether it answers."""
    folder = instance_dir(port, state_dir)
    pid, state = _running_pid(folder)
    options = state if pid is not None else read_json(folder / "options.json")
    recorded_port = options.get("port")
    if state_dir is not None and isinstance(recorded_port, int):
        port = recorded_port
    return _info(port, folder, pid, _options(options))


# --- start / stop ------------------------------------------------------------------------


def start(
    port: int = DEFAULT_PORT,
    validate: bool = False,
    state_dir: Path | None = None,
    *,
    profile: str = DEFAULT_PROFILE,
    smart: SmartServer | None = None,
    ig: str | None = None,
    timeout: float = START_TIMEOUT,
    progress: Progress | None = None,
) -> SandboxInfo:
    """Start the sandbox in the background and wait until ``/fhir/metadata`` answers 200.

    Builds the jar first when needed. ``profile`` makes it refuse what an EHR of that kind
    refuses (``open``, ``epic-like``, ``oracle-like``; docs/sandbox.md); ``smart`` makes it a
    SMART resource server demanding that authorization server's tokens; ``ig`` (with
    ``validate``) validates against that US Core package by resource type. When this state
    directory's server already runs, it is returned as it is (after waiting for it to answer);
    asking for another ``validate``, ``profile``, ``smart`` or ``ig`` than the running one is an
    error. The server binds 127.0.0.1 only.
    """
    check_profile(profile)
    check_ig(ig, validate)
    folder = instance_dir(port, state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with locked(folder / "start.lock"):
        pid, state = _running_pid(folder)
        if pid is not None:
            running_port = int(state.get("port", port))
            running_validate, running_profile, running_smart, running_ig = _options(state)
            if running_port != port:
                raise SandboxError(
                    f"the sandbox of {folder} already runs on port {running_port}; stop it first"
                )
            if running_validate != validate:
                raise SandboxError(
                    f"a sandbox already runs on port {port} with validation "
                    f"{'on' if running_validate else 'off'}; stop or reset it first"
                )
            if running_profile != profile:
                raise SandboxError(
                    f"a sandbox already runs on port {port} with profile {running_profile}; "
                    f"stop it first"
                )
            if running_ig != ig:
                raise SandboxError(
                    f"a sandbox already runs on port {port} with implementation guide "
                    f"{running_ig or 'none'}; stop or reset it first"
                )
            if running_smart != smart:
                running_issuer = running_smart.issuer if running_smart else "none"
                raise SandboxError(
                    f"a sandbox already runs on port {port} with other SMART settings "
                    f"(authorization server: {running_issuer}); stop it first"
                )
            wait_until_ready(port, pid, folder, timeout)
            return _info(port, folder, pid, (validate, profile, smart, ig))

        if port_in_use(port):
            url = base_url(port)
            if answers(url, timeout=1.0):
                raise SandboxError(
                    f"port {port} is taken by a FHIR server that this state directory did not "
                    f"start ({url}); stop it, or choose another port"
                )
            raise SandboxError(f"port {port} on 127.0.0.1 is already in use by another program")

        java = find_java()
        jar = build(progress=progress)
        data_dir = folder / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        log_file = folder / "server.log"
        if log_file.exists():  # the last run's log is kept for one more start
            log_file.replace(folder / "server.log.1")
        command = server_command(
            java, jar, port, data_dir, validate, profile=profile, smart=smart, ig=ig
        )
        say(
            progress,
            f"starting the HAPI FHIR sandbox on port {port}, profile {profile}"
            f"{', SMART on' if smart else ''}{', validating against ' + ig if ig else ''}"
            f" (log: {log_file})",
        )
        with log_file.open("wb") as log:
            child = subprocess.Popen(
                command,
                cwd=folder,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() signals the group
            )
        CHILDREN[child.pid] = child
        options = {
            "port": port,
            "validate": validate,
            "profile": profile,
            "smart": smart.to_json() if smart else None,
            "ig": ig,
        }
        write_json(folder / "options.json", options)
        write_json(
            folder / "server.pid",
            {**options, "pid": child.pid, "jar": str(jar), "started_at": time.time()},
        )
        try:
            wait_until_ready(port, child.pid, folder, timeout)
        except SandboxError:
            terminate(child.pid, folder / "data", grace=10.0)
            (folder / "server.pid").unlink(missing_ok=True)
            raise
        return _info(port, folder, child.pid, (validate, profile, smart, ig))


def stop(port: int = DEFAULT_PORT, state_dir: Path | None = None, *, timeout: float = 30.0) -> bool:
    """Stop the server started by this state directory; False when none was running.

    Sends SIGTERM (HAPI shuts down cleanly and closes the database), then SIGKILL after
    ``timeout`` seconds. Never signals a process whose command line is not our jar.
    """
    folder = instance_dir(port, state_dir)
    with locked(folder / "start.lock"):
        pid, _ = _running_pid(folder)
        if pid is None:
            return False
        terminate(pid, folder / "data", grace=timeout)
        (folder / "server.pid").unlink(missing_ok=True)
        return True


def logs(lines: int = 50, port: int = DEFAULT_PORT, state_dir: Path | None = None) -> str:
    """The last ``lines`` lines of the server log ("" when there is none)."""
    return tail(instance_dir(port, state_dir) / "server.log", lines)


def reset(
    port: int = DEFAULT_PORT,
    state_dir: Path | None = None,
    *,
    timeout: float = START_TIMEOUT,
    progress: Progress | None = None,
) -> SandboxInfo:
    """Stop the server, delete its H2 database, and start it again, empty, with the options
    it last ran with (validation, profile, SMART authorization server, guide)."""
    folder = instance_dir(port, state_dir)
    validate, profile, smart, ig = _options(read_json(folder / "options.json"))
    stop(port, state_dir)
    shutil.rmtree(folder / "data", ignore_errors=True)
    say(progress, f"deleted the sandbox database in {folder / 'data'}")
    return start(
        port,
        validate,
        state_dir,
        profile=profile,
        smart=smart,
        ig=ig,
        timeout=timeout,
        progress=progress,
    )
