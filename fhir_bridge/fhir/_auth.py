"""The auth of a connection's settings: none, a bearer token, client credentials, or SMART
Backend Services, as :func:`make_auth` builds it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import httpx

from fhir_bridge.errors import InputError

from ._bearer import BearerToken
from ._client_credentials import ClientCredentials
from ._secrets import secret_of
from ._smart import Algorithm, SmartBackendServices

AuthKind = Literal["none", "bearer", "client-credentials", "smart-backend"]


def make_auth(
    kind: AuthKind,
    *,
    base_url: str,
    token_env: str | None = None,
    token_file: str | Path | None = None,
    token_url: str | None = None,
    client_id: str | None = None,
    client_secret_env: str | None = None,
    client_secret_file: str | Path | None = None,
    private_key_file: str | Path | None = None,
    private_key_env: str | None = None,
    key_id: str | None = None,
    algorithm: Algorithm = "RS384",
    scope: str | None = None,
    connection: str | None = None,
) -> httpx.Auth | None:
    """The auth for a connection's settings (the fields of ``[connections.NAME.auth]``).

    Secrets are named by file or environment variable, read here; a missing one is an
    InputError naming the setting, never showing a value. ``connection`` (the connection's
    name) is named in the AuthError of a token that cannot be had.
    """
    if kind == "none":
        return None
    if kind == "bearer":
        return BearerToken(secret_of(token_file, token_env, "token_file or token_env"))
    if client_id is None:
        raise InputError("auth.client_id", f"required for auth kind {kind!r}")
    if kind == "client-credentials":
        if token_url is None:
            raise InputError("auth.token_url", "required for auth kind 'client-credentials'")
        secret = secret_of(client_secret_file, client_secret_env, "client_secret_file or _env")
        return ClientCredentials(token_url, client_id, secret, scope, connection=connection)
    if kind == "smart-backend":
        if key_id is None or scope is None:
            raise InputError("auth.key_id/scope", "required for auth kind 'smart-backend'")
        key = secret_of(private_key_file, private_key_env, "private_key_file or private_key_env")
        return SmartBackendServices(
            client_id=client_id,
            private_key_pem=key,
            key_id=key_id,
            scope=scope,
            algorithm=algorithm,
            fhir_base_url=base_url,
            token_url=token_url,
            connection=connection,
        )
    raise InputError("auth.kind", f"unknown auth kind {kind!r}")
