"""Configuration: ``fhir-bridge.toml`` (path from ``FHIR_BRIDGE_CONFIG``) and environment.

```toml
database_url = "sqlite:///fhir-bridge.db"
namespace = "https://care.example.org/fhir-bridge"

[connections.county-hospital]
base_url = "https://ehr.example.org/fhir"
conflict_policy = "manual"          # or "ehr-wins", "local-wins"
enrol = "listed"                    # only enrolled patients' records (or "all")
patient_mode = "match"              # or "create"; unset: create on localhost, else match
mrn_system = "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14"  # the EHR's MRN system
auth = { kind = "smart-backend", client_id = "bridge", private_key_file = "/run/keys/bridge.pem",
         key_id = "k1", algorithm = "RS384", scope = "system/CarePlan.rs system/Goal.cruds" }

[logging]
level = "INFO"                      # FHIR_BRIDGE_LOG_LEVEL overrides it
format = "json"                     # or "keyvalue" (the default)
```

Environment variables override the file: ``FHIR_BRIDGE_DATABASE_URL``,
``FHIR_BRIDGE_NAMESPACE``, ``FHIR_BRIDGE_LOG_LEVEL``, ``FHIR_BRIDGE_MAX_BODY_BYTES``.
"""

from __future__ import annotations

import ipaddress
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from fhir_bridge.errors import InputError
from fhir_bridge.mappers import DEFAULT_NAMESPACE, MappingContext

CONFIG_ENV = "FHIR_BRIDGE_CONFIG"
DEFAULT_CONFIG = "fhir-bridge.toml"

# the header that carries the secret in every notification an EHR sends (Subscriptions)
WEBHOOK_SECRET_HEADER = "X-Fhir-Bridge-Secret"  # noqa: S105 - a header name, not a secret


class AuthConfig(BaseModel):
    """How to reach one FHIR server. Secrets are named by file or env var, never inline."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["none", "bearer", "client-credentials", "smart-backend"] = "none"
    token_env: str | None = None
    token_file: Path | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None
    client_secret_file: Path | None = None
    private_key_file: Path | None = None
    private_key_env: str | None = None
    key_id: str | None = None
    algorithm: Literal["RS384", "ES384"] = "RS384"
    scope: str | None = None


class OrganizationConfig(BaseModel):
    """The organisation a connection is the own FHIR endpoint of: its internal directory id
    (``id``, as referrals name their performer), or one of its identifiers (``system`` and
    ``value``, e.g. an NPI)."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    system: str | None = None
    value: str | None = None

    @model_validator(mode="after")
    def _named(self) -> OrganizationConfig:
        if self.id is None and self.value is None:
            raise ValueError("name the organisation by id or by identifier (system, value)")
        return self


class ConnectionConfig(BaseModel):
    """One EHR FHIR server."""

    model_config = ConfigDict(extra="forbid")

    base_url: str
    auth: AuthConfig = Field(default_factory=AuthConfig)
    max_in_flight: int = Field(default=8, ge=1, le=64)
    timeout_seconds: float = Field(default=30.0, gt=0)
    bundle_size: int = Field(default=50, ge=1, le=500)
    conflict_policy: Literal["manual", "ehr-wins", "local-wins"] = "manual"
    handoff_delivery: Literal["document", "transaction"] = Field(
        default="document",
        description="How this receiver takes handoffs: the document Bundle, or its resources",
    )
    webhook_secret_env: str | None = Field(
        default=None,
        description="Deprecated and ignored: each Subscription now has a secret of its own, "
        "issued by `fhir-bridge subscribe` and kept hashed in the store",
    )
    enrol: Literal["all", "listed"] = Field(
        default="listed",
        description='Whose records go here: only enrolled patients\' ("listed", the default, '
        'so a newly configured EHR receives nothing it was not meant to), or all ("all")',
    )
    mrn_system: str | None = Field(
        default=None, description="The identifier system of this EHR's medical record numbers"
    )
    organization: OrganizationConfig | None = Field(
        default=None,
        description="The organisation this server belongs to: referrals it fulfils go here",
    )
    remember_refusals_hours: float | None = Field(
        default=168.0,
        gt=0,
        description="How long push remembers what the server refused at run time (none: "
        "until its CapabilityStatement changes or `fhir-bridge capabilities --forget`)",
    )

    def refusal_memory(self) -> timedelta | None:
        """``remember_refusals_hours`` as a duration (None: no limit)."""
        hours = self.remember_refusals_hours
        return None if hours is None else timedelta(hours=hours)

    patient_mode: Literal["match", "create"] | None = Field(
        default=None,
        description="match: find the EHR's own Patient and never write it; create: upsert ours. "
        "Unset: create for a server on this machine (a loopback address), match otherwise",
    )
    allow_insecure_http: bool = Field(
        default=False,
        description="Send credentials over plain http to a server that is not on this machine "
        "(or keep user:password in a URL); refused unless set",
    )

    @model_validator(mode="after")
    def _no_credentials_in_the_clear(self) -> ConnectionConfig:
        if self.allow_insecure_http:
            return self
        for name, url in (("base_url", self.base_url), ("auth.token_url", self.auth.token_url)):
            if url is not None and (urlsplit(url).username or urlsplit(url).password):
                raise ValueError(
                    f"{name} holds a user name or password: name credentials in auth (or set "
                    "allow_insecure_http = true on this connection)"
                )
        if self.auth.kind == "none":
            return self
        urls: list[tuple[str, str | None]] = [("base_url", self.base_url)]
        if self.auth.kind != "bearer":
            urls.append(("auth.token_url", self.auth.token_url))
        for name, url in urls:
            if url is not None and urlsplit(url).scheme == "http" and not is_local(url):
                raise ValueError(
                    f"{name} is plain http to another machine: the {self.auth.kind} credentials "
                    "would cross the network in the clear; use https (or set "
                    "allow_insecure_http = true on this connection)"
                )
        return self

    @property
    def effective_patient_mode(self) -> Literal["match", "create"]:
        """``patient_mode`` as set, else ``create`` for a local server (the sandbox: a base URL
        on localhost or a loopback address) and ``match`` for any other."""
        if self.patient_mode is not None:
            return self.patient_mode
        return "create" if is_local(self.base_url) else "match"


def is_local(base_url: str) -> bool:
    """Whether a base URL names this machine (``localhost`` or a loopback address)."""
    host = (urlsplit(base_url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LoggingConfig(BaseModel):
    """``[logging]``: how fhir-bridge logs (``FHIR_BRIDGE_LOG_LEVEL`` overrides the level)."""

    model_config = ConfigDict(extra="forbid")

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] | None = Field(
        default=None,
        description="Unset: INFO for serve and worker, WARNING for one-shot commands",
    )
    format: Literal["json", "keyvalue"] = "keyvalue"


class Settings(BaseSettings):
    """Everything fhir-bridge is configured with."""

    model_config = SettingsConfigDict(env_prefix="FHIR_BRIDGE_", extra="forbid")

    database_url: str = "sqlite:///fhir-bridge.db"
    namespace: str = DEFAULT_NAMESPACE
    organization: str = Field(
        default="Care management", description="Custodian named on handoff documents"
    )
    connections: dict[str, ConnectionConfig] = Field(default_factory=dict)
    notification_window_seconds: float = Field(
        default=2.0,
        ge=0,
        le=300,
        description="Subscription notifications of one connection and type arriving within "
        "this many seconds of the first cause one pull of that type",
    )
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    max_body_bytes: int = Field(
        default=5 * 1024 * 1024,
        ge=1024,
        description="The largest request body the API reads (bytes); larger ones get 413",
    )

    def mapping_context(self, now: datetime) -> MappingContext:
        """The mappers' context: this configuration's namespace, stamped with ``now``."""
        return MappingContext(self.namespace, now)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = Path(os.environ.get(CONFIG_ENV, DEFAULT_CONFIG))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=path))


def load_settings() -> Settings:
    """The settings in force; a broken config file is an InputError naming the field."""
    path = os.environ.get(CONFIG_ENV, DEFAULT_CONFIG)
    if CONFIG_ENV in os.environ and not Path(path).is_file():
        raise InputError(path, "no such configuration file")
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(path, f"{where}: {first['msg']}") from None
    except ValueError as exc:  # TOML syntax
        raise InputError(path, f"not valid TOML: {exc}") from None
