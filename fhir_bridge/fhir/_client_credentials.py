"""OAuth 2.0 client credentials with a client secret."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Literal
from urllib.parse import quote

import httpx

from ._secrets import Secret
from ._token_auth import TokenAuth, TokenFlow


class ClientCredentials(TokenAuth):
    """OAuth 2.0 client credentials grant with a client secret (basic or post)."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        *,
        method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic",
        clock: Callable[[], float] = time.time,
        refresh_margin: float = 30.0,
        connection: str | None = None,
    ) -> None:
        super().__init__(clock=clock, refresh_margin=refresh_margin, connection=connection)
        if method not in ("client_secret_basic", "client_secret_post"):
            raise ValueError("method must be client_secret_basic or client_secret_post")
        self.token_url = token_url
        self.client_id = client_id
        self.scope = scope
        self.method = method
        self._secret = Secret(client_secret)

    def _token_flow(self) -> TokenFlow:
        data = {"grant_type": "client_credentials"}
        if self.scope:
            data["scope"] = self.scope
        headers = {"Accept": "application/json"}
        if self.method == "client_secret_post":
            data["client_id"] = self.client_id
            data["client_secret"] = self._secret.reveal()
        else:  # RFC 6749 2.3.1: form-encode both parts before base64
            pair = f"{quote(self.client_id, safe='')}:{quote(self._secret.reveal(), safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        response = yield httpx.Request("POST", self.token_url, data=data, headers=headers)
        self._store_token(response)

    def __repr__(self) -> str:
        return (
            f"ClientCredentials(token_url={self.token_url!r}, client_id={self.client_id!r}, "
            f"method={self.method!r}, client_secret=<secret>)"
        )
