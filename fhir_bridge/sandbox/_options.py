"""What a sandbox is started with beside its port: the EHR-like profile it mimics and the SMART
authorization server whose tokens it demands (both handed to the server's command line)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ._error import SandboxError

PROFILES: tuple[str, ...] = ("open", "epic-like", "oracle-like")
"""The profiles the server knows (``sandbox/hapi``'s ``SandboxProfile``); docs/sandbox.md."""

DEFAULT_PROFILE = "open"

IMPLEMENTATION_GUIDES: tuple[str, ...] = ("us-core-7", "us-core-6.1")
"""The guides a validating server can load (``--ig``; ``sandbox/hapi``'s ``ImplementationGuide``:
US Core 7.0.0 and 6.1.0, shipped in the jar); docs/sandbox.md."""


def check_profile(profile: str) -> str:
    """``profile`` when the server knows it; :class:`SandboxError` naming the known ones."""
    if profile not in PROFILES:
        raise SandboxError(f"unknown sandbox profile {profile!r} (known: {', '.join(PROFILES)})")
    return profile


def check_ig(ig: str | None, validate: bool) -> str | None:
    """``ig`` when the server knows it and validation is on; :class:`SandboxError` otherwise."""
    if ig is None:
        return None
    if ig not in IMPLEMENTATION_GUIDES:
        raise SandboxError(
            f"unknown implementation guide {ig!r} (known: {', '.join(IMPLEMENTATION_GUIDES)})"
        )
    if not validate:
        raise SandboxError(f"the implementation guide {ig} is for validation: add --validate")
    return ig


def _check_url(field: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SandboxError(f"SmartServer.{field} must be an http or https URL, not {value!r}")


@dataclass(frozen=True, slots=True)
class SmartServer:
    """The authorization server a SMART-protected sandbox trusts.

    The sandbox accepts only bearer JWTs issued by ``issuer`` and signed by a key of
    ``jwks_url``; ``token_url`` is what it advertises to clients (``.well-known/
    smart-configuration`` and the CapabilityStatement's ``rest.security``).
    """

    issuer: str
    jwks_url: str
    token_url: str

    def __post_init__(self) -> None:
        _check_url("issuer", self.issuer)
        _check_url("jwks_url", self.jwks_url)
        _check_url("token_url", self.token_url)

    def server_arguments(self) -> list[str]:
        """The server's command-line options."""
        return [
            f"--smart-issuer={self.issuer}",
            f"--smart-jwks-url={self.jwks_url}",
            f"--smart-token-url={self.token_url}",
        ]

    def to_json(self) -> dict[str, str]:
        return {"issuer": self.issuer, "jwks_url": self.jwks_url, "token_url": self.token_url}

    @classmethod
    def from_json(cls, data: Any) -> SmartServer | None:
        """The server recorded in a state file (None when there is none or it is unreadable)."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(str(data["issuer"]), str(data["jwks_url"]), str(data["token_url"]))
        except (KeyError, SandboxError):
            return None
