"""Asking a FHIR server over HTTP: does it answer, and what software is it."""

from __future__ import annotations

import httpx

from ._error import SandboxError


def answers(url: str, timeout: float = 3.0) -> bool:
    try:
        response = httpx.get(
            f"{url}/metadata", timeout=timeout, headers={"Accept": "application/fhir+json"}
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200


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
