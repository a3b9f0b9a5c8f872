"""A static bearer token."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import httpx

from ._secrets import Secret, secret_from_env, secret_from_file


class BearerToken(httpx.Auth):
    """A fixed access token sent as ``Authorization: Bearer ...``."""

    def __init__(self, token: str) -> None:
        if not token.strip():
            raise ValueError("empty bearer token")
        self._token = Secret(token.strip())

    @classmethod
    def from_env(cls, name: str) -> BearerToken:
        return cls(secret_from_env(name))

    @classmethod
    def from_file(cls, path: str | Path) -> BearerToken:
        return cls(secret_from_file(path))

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.reveal()}"
        yield request

    def __repr__(self) -> str:
        return "BearerToken(<secret>)"
