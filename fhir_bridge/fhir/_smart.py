"""SMART Backend Services: a signed JWT client assertion (RS384 or ES384) for a token, with
the token endpoint given or discovered from ``.well-known/smart-configuration``."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from fhir_bridge.errors import InputError

from ._token_auth import TokenAuth, TokenFlow, response_json

log = logging.getLogger("fhir_bridge.fhir")

Algorithm = Literal["RS384", "ES384"]
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME = 300.0


class SmartBackendServices(TokenAuth):
    """SMART Backend Services: a signed JWT client assertion (RS384 or ES384) for a token.

    Give ``token_url``, or ``fhir_base_url`` to discover it once from
    ``[base]/.well-known/smart-configuration``.
    """

    def __init__(
        self,
        *,
        client_id: str,
        private_key_pem: str | bytes,
        key_id: str,
        scope: str,
        algorithm: Algorithm = "RS384",
        fhir_base_url: str | None = None,
        token_url: str | None = None,
        jku: str | None = None,
        clock: Callable[[], float] = time.time,
        assertion_lifetime: float = 240.0,
        refresh_margin: float = 30.0,
        connection: str | None = None,
    ) -> None:
        super().__init__(clock=clock, refresh_margin=refresh_margin, connection=connection)
        self.client_id = client_id
        self.key_id = key_id
        self.scope = scope
        self.algorithm: Algorithm = algorithm
        self.fhir_base_url = fhir_base_url.rstrip("/") if fhir_base_url else None
        self.token_url = token_url
        self.jku = jku
        self.assertion_lifetime = assertion_lifetime
        if token_url is None and fhir_base_url is None:
            raise ValueError("give token_url or fhir_base_url")
        if algorithm not in ("RS384", "ES384"):
            raise ValueError("algorithm must be RS384 or ES384")
        if not 0 < assertion_lifetime <= MAX_ASSERTION_LIFETIME:
            raise ValueError("assertion_lifetime must be within (0, 300] seconds")
        self._key = _load_key(private_key_pem, algorithm)

    def _token_flow(self) -> TokenFlow:
        if self.token_url is None:
            response = yield httpx.Request(
                "GET",
                f"{self.fhir_base_url}/.well-known/smart-configuration",
                headers={"Accept": "application/json"},
            )
            self.token_url = self._discovered_token_url(response)
        data = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.client_assertion(self.token_url),
            "scope": self.scope,
        }
        response = yield httpx.Request(
            "POST", self.token_url, data=data, headers={"Accept": "application/json"}
        )
        self._store_token(response)

    def client_assertion(self, audience: str) -> str:
        """A freshly signed client assertion JWT for ``audience`` (the token endpoint)."""
        now = self._clock()
        headers: dict[str, Any] = {"kid": self.key_id, "typ": "JWT"}
        if self.jku:
            headers["jku"] = self.jku
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "exp": int(now + self.assertion_lifetime),
            "iat": int(now),
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers=headers)

    def _discovered_token_url(self, response: httpx.Response) -> str:
        body = response_json(response)
        if response.status_code != 200 or not isinstance(body, dict):
            raise self._error("SMART discovery failed", status=response.status_code)
        endpoint = body.get("token_endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            raise self._error("SMART configuration has no token_endpoint")
        algs = body.get("token_endpoint_auth_signing_alg_values_supported")
        if isinstance(algs, list) and algs and self.algorithm not in algs:
            raise self._error(f"the server does not accept {self.algorithm} client assertions")
        log.info("token endpoint discovered", extra={"action": "fhir.smart_discovery"})
        return endpoint

    def __repr__(self) -> str:
        where = (
            f"token_url={self.token_url!r}"
            if self.token_url
            else (f"fhir_base_url={self.fhir_base_url!r}")
        )
        return (
            f"SmartBackendServices(client_id={self.client_id!r}, key_id={self.key_id!r}, "
            f"algorithm={self.algorithm!r}, {where}, private_key=<secret>)"
        )


def _load_key(
    pem: str | bytes, algorithm: Algorithm
) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise InputError("private key", "not an unencrypted PEM private key") from None
    if algorithm == "RS384" and isinstance(key, rsa.RSAPrivateKey):
        return key
    if (
        algorithm == "ES384"
        and isinstance(key, ec.EllipticCurvePrivateKey)
        and isinstance(key.curve, ec.SECP384R1)
    ):
        return key
    raise InputError("private key", f"key type does not fit {algorithm}")
