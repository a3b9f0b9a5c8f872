"""Where the sandbox's things are: the Maven project, the jar, the state directories; and
the pinned HAPI version."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ._error import SandboxError

HAPI_VERSION = "8.8.0"
"""The HAPI FHIR version the sandbox is built with (the parent version in ``pom.xml``)."""

JAR_NAME = "fhir-bridge-hapi-sandbox.jar"
STATE_DIR_ENV = "FHIR_BRIDGE_SANDBOX_DIR"
JAR_ENV = "FHIR_BRIDGE_SANDBOX_JAR"
JAVA_OPTS_ENV = "FHIR_BRIDGE_SANDBOX_JAVA_OPTS"
DEFAULT_PORT = 8080

PROJECT = Path(__file__).resolve().parents[2] / "sandbox" / "hapi"


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
    return PROJECT


def jar_path() -> Path:
    """Where the server jar is: ``$FHIR_BRIDGE_SANDBOX_JAR``, else the Maven build output."""
    configured = os.environ.get(JAR_ENV)
    if configured:
        return Path(configured).expanduser()
    return PROJECT / "target" / JAR_NAME


def pom_hapi_version(pom: Path | None = None) -> str:
    """The HAPI version pinned in ``pom.xml`` (the ``hapi-fhir`` parent's version)."""
    text = (pom or PROJECT / "pom.xml").read_text(encoding="utf-8")
    found = re.search(
        r"<parent>\s*<groupId>ca\.uhn\.hapi\.fhir</groupId>\s*<artifactId>hapi-fhir</artifactId>"
        r"\s*<version>([^<]+)</version>",
        text,
    )
    if found is None:
        raise SandboxError(f"no ca.uhn.hapi.fhir:hapi-fhir parent version in {pom}")
    return found.group(1).strip()
