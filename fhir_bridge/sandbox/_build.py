"""Building the server jar with Maven when it is missing or older than its sources."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from ._error import SandboxError
from ._files import locked, tail
from ._java import find_java
from ._paths import HAPI_VERSION, JAR_ENV, PROJECT, default_state_dir, jar_path

BUILD_TIMEOUT = 1800.0

Progress = Callable[[str], None]


def say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def _jar_is_stale(jar: Path) -> bool:
    if not jar.is_file():
        return True
    built = jar.stat().st_mtime
    sources = [PROJECT / "pom.xml", *(PROJECT / "src").rglob("*")]
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
    if not (PROJECT / "pom.xml").is_file():
        raise SandboxError(
            f"the sandbox's Maven project is not at {PROJECT} (fhir-bridge must run from a "
            f"source checkout, or set ${JAR_ENV} to a built jar)"
        )
    root = default_state_dir()
    with locked(root / "build.lock"):
        if not force and not _jar_is_stale(jar):
            return jar
        mvn = shutil.which("mvn")
        if mvn is None:
            raise SandboxError(
                "Maven (mvn) was not found on PATH; it is needed once to build the HAPI sandbox"
            )
        find_java()
        log = root / "build.log"
        say(progress, f"building the HAPI FHIR {HAPI_VERSION} sandbox with Maven (log: {log})")
        started = time.monotonic()
        with log.open("wb") as out:
            try:
                done = subprocess.run(
                    [mvn, "-q", "-B", "package", "-DskipTests"],
                    cwd=PROJECT,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    check=False,
                    timeout=BUILD_TIMEOUT,
                )
            except subprocess.TimeoutExpired:
                raise SandboxError(
                    f"the Maven build took longer than {BUILD_TIMEOUT:.0f} s", tail(log, 40)
                ) from None
        if done.returncode != 0 or not jar.is_file():
            text = tail(log, 400)
            if "Could not resolve" in text or "Could not find artifact" in text:
                what = "Maven could not resolve the sandbox's dependencies"
            elif "COMPILATION ERROR" in text or "Compilation failure" in text:
                what = "the sandbox's Java sources do not compile"
            else:
                what = f"the Maven build failed (exit code {done.returncode})"
            raise SandboxError(f"{what}; full output in {log}", tail(log, 40))
        say(progress, f"built {jar.name} in {time.monotonic() - started:.0f} s")
        return jar
