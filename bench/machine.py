"""What the figures were measured on: machine, load, versions."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import psutil

from fhir_bridge import sandbox

PACKAGES = ("fhir-bridge", "fhirpy", "httpx", "aiohttp", "requests", "sqlalchemy", "pydantic")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _java() -> str | None:
    try:
        done = subprocess.run(
            ["java", "-version"], capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[0] if lines else None


def describe(base_url: str) -> dict[str, Any]:
    try:
        software = " ".join(sandbox.server_software(base_url))
    except Exception as exc:  # a description, never a failure
        software = f"unknown ({type(exc).__name__})"
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "java": _java(),
        "server": software,
        "versions": {p: _version(p) for p in PACKAGES},
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
    }


def other_processes_busy() -> list[str]:
    """Processes other than this one using noticeable CPU right now (names only)."""
    me = os.getpid()
    procs = list(psutil.process_iter(["pid", "name"]))
    for p in procs:
        try:
            p.cpu_percent(None)
        except psutil.Error:
            continue
    psutil.cpu_percent(0.5)
    busy = []
    for p in procs:
        try:
            if p.pid != me and p.cpu_percent(None) > 20:
                busy.append(str(p.info["name"]))
        except psutil.Error:
            continue
    return sorted(set(busy))
