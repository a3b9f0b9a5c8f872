"""Which FHIR server a command talks to: a named connection from the settings, or a URL."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from fhir_bridge import metrics
from fhir_bridge.config import ConnectionConfig, Settings
from fhir_bridge.errors import InputError
from fhir_bridge.fhir import FhirClient, make_auth
from fhir_bridge.store import Organization, Route, Routing


@dataclass(frozen=True)
class Connection:
    name: str
    config: ConnectionConfig

    def client(self, transport: httpx.AsyncBaseTransport | None = None) -> FhirClient:
        """A pooled client for this connection (use it as an async context manager).

        ``transport`` replaces httpx's own (workers pass a :class:`FleetGate`)."""
        auth = self.config.auth
        return FhirClient(
            self.config.base_url,
            auth=make_auth(
                auth.kind,
                base_url=self.config.base_url,
                token_env=auth.token_env,
                token_file=auth.token_file,
                token_url=auth.token_url,
                client_id=auth.client_id,
                client_secret_env=auth.client_secret_env,
                client_secret_file=auth.client_secret_file,
                private_key_file=auth.private_key_file,
                private_key_env=auth.private_key_env,
                key_id=auth.key_id,
                algorithm=auth.algorithm,
                scope=auth.scope,
                connection=self.name,
            ),
            max_in_flight=self.config.max_in_flight,
            timeout=httpx.Timeout(self.config.timeout_seconds, connect=10.0),
            observer=metrics.request_observer(self.name),
            transport=transport,
        )


def resolve_connection(settings: Settings, name: str | None, fhir_url: str | None) -> Connection:
    """``--connection NAME`` from the settings, or ``--fhir-url URL`` (unauthenticated)."""
    if name and fhir_url:
        raise InputError("--connection/--fhir-url", "give one of them, not both")
    if fhir_url:
        if not fhir_url.startswith(("http://", "https://")):
            raise InputError("--fhir-url", f"not an http(s) URL: {fhir_url!r}")
        # an ad-hoc server takes everything, as it always has (no enrolments name it)
        config = ConnectionConfig(base_url=fhir_url.rstrip("/"), enrol="all")
        return Connection(fhir_url.rstrip("/"), config)
    if name is None:
        if len(settings.connections) == 1:
            name = next(iter(settings.connections))
        else:
            known = ", ".join(settings.connections) or "none configured"
            raise InputError("--connection", f"name a connection ({known}) or give --fhir-url")
    if name not in settings.connections:
        known = ", ".join(settings.connections) or "none configured"
        raise InputError("--connection", f"no connection {name!r} (known: {known})")
    return Connection(name, settings.connections[name])


def routing_of(settings: Settings) -> Routing:
    """Every configured connection's route: its ``enrol`` rule and its organisation."""
    return Routing(
        tuple(
            Route(
                name,
                config.enrol,
                None
                if config.organization is None
                else Organization(
                    config.organization.id, config.organization.system, config.organization.value
                ),
            )
            for name, config in settings.connections.items()
        )
    )
