"""The local FHIR sandbox: a real HAPI FHIR JPA server (R4, H2) built from ``sandbox/hapi/``.

    from fhir_bridge import sandbox

    info = sandbox.start(port=8080)          # builds the jar on first use, waits until ready
    sandbox.start(port=8090, profile="epic-like")   # refuses what an Epic-like EHR refuses
    sandbox.start(port=8095, validate=True, ig="us-core-7")  # validates as a hospital does
    info.base_url                            # 'http://127.0.0.1:8080/fhir'
    sandbox.server_software(info.base_url)   # ('HAPI FHIR Server', '8.8.0')
    sandbox.reset()                          # stop, delete the database, start again empty
    sandbox.stop()

Every failure raises :class:`SandboxError` (``message``, ``log_tail``). See ``docs/sandbox.md``.
"""

from ._build import build
from ._error import SandboxError
from ._manager import SandboxInfo, logs, reset, start, status, stop
from ._options import DEFAULT_PROFILE, IMPLEMENTATION_GUIDES, PROFILES, SmartServer
from ._paths import (
    DEFAULT_PORT,
    HAPI_VERSION,
    base_url,
    default_state_dir,
    instance_dir,
    jar_path,
    pom_hapi_version,
)
from ._probe import server_software

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_PROFILE",
    "HAPI_VERSION",
    "IMPLEMENTATION_GUIDES",
    "PROFILES",
    "SandboxError",
    "SandboxInfo",
    "SmartServer",
    "base_url",
    "build",
    "default_state_dir",
    "instance_dir",
    "jar_path",
    "logs",
    "pom_hapi_version",
    "reset",
    "server_software",
    "start",
    "status",
    "stop",
]
