"""Dependencies shared by the routes: the store, the settings, API-key scopes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

import httpx
from fastapi import Depends, Header, HTTPException, Path, Request, status

from fhir_bridge.config import Settings
from fhir_bridge.store import Grant, Store


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def store_of(request: Request) -> Store:
    """The app's store: one engine and connection pool shared by every request."""
    store: Store = request.app.state.store
    return store


def transport_of(request: Request) -> httpx.AsyncBaseTransport | None:
    """The way to the FHIR servers the app was made with (None: httpx's own)."""
    transport: httpx.AsyncBaseTransport | None = request.app.state.transport
    return transport


StoreDep = Annotated[Store, Depends(store_of)]
TransportDep = Annotated[httpx.AsyncBaseTransport | None, Depends(transport_of)]
SettingsDep = Annotated[Settings, Depends(settings_of)]


def require(scope: str) -> Callable[..., None]:
    """A dependency refusing requests without an API key holding ``scope`` (admin holds all)."""

    def check(
        request: Request, store: StoreDep, authorization: Annotated[str | None, Header()] = None
    ) -> None:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "an API key is required (Authorization: Bearer <key>)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        grant: Grant | None = getattr(request.state, "grant", None)  # found by the input guard
        if grant is None:
            grant = store.api_keys.check(authorization[7:].strip(), datetime.now(UTC))
        if grant is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown, revoked or expired API key")
        request.state.actor = f"apikey:{grant.name}"  # who, for the audit trail
        if scope not in grant.scopes and "admin" not in grant.scopes:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this key lacks the {scope!r} scope")

    return check


Read = Depends(require("read"))
Write = Depends(require("write"))


MAX_ROW_ID = 2**63 - 1  # the largest integer SQLite and PostgreSQL (bigint) store
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="The id this service gave")]
