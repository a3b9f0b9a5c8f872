"""Java for the HAPI server: finding a Java 17+, the JVM options, and the server's command line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from ._error import SandboxError
from ._options import DEFAULT_PROFILE, SmartServer

JAVA_OPTS_ENV = "FHIR_BRIDGE_SANDBOX_JAVA_OPTS"
MIN_JAVA = 17
JAVA_OPTIONS: tuple[str, ...] = (
    "-Xmx1536m",
    "-XX:+UseSerialGC",
    "-Djava.awt.headless=true",
    "-Dfile.encoding=UTF-8",
)
"""JVM options: a modest heap, and the serial collector (least memory on a 2-core machine)."""


def find_java() -> str:
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


def java_options() -> list[str]:
    extra = os.environ.get(JAVA_OPTS_ENV, "").split()
    return [*JAVA_OPTIONS, *extra]


def server_command(
    java: str,
    jar: Path,
    port: int,
    data_dir: Path,
    validate: bool,
    *,
    profile: str = DEFAULT_PROFILE,
    smart: SmartServer | None = None,
    ig: str | None = None,
) -> list[str]:
    """The command line that runs the HAPI server of one state directory (the open profile
    without SMART gives exactly the command line of before profiles existed)."""
    command = [
        java,
        *java_options(),
        "-jar",
        str(jar),
        f"--port={port}",
        f"--data-dir={data_dir}",
    ]
    if validate:
        command.append("--validate")
    if ig is not None:
        command.append(f"--ig={ig}")
    if profile != DEFAULT_PROFILE:
        command.append(f"--profile={profile}")
    if smart is not None:
        command.extend(smart.server_arguments())
    return command
