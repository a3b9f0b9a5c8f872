"""Key pairs for SMART Backend Services clients: a private key (PEM) for the bridge to sign
its client assertions with, and the public key as a JWK for the authorization server."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

Algorithm = Literal["RS384", "ES384"]
ALGORITHMS: tuple[Algorithm, ...] = ("RS384", "ES384")


@dataclass(frozen=True)
class KeyPair:
    """A generated key pair: ``private_pem`` stays with the bridge, ``public_jwk`` goes to
    the authorization server (it carries ``kid``, ``alg`` and ``use``)."""

    algorithm: Algorithm
    key_id: str
    private_pem: bytes
    public_jwk: dict[str, Any]

    def __repr__(self) -> str:
        return f"KeyPair(algorithm={self.algorithm!r}, key_id={self.key_id!r}, private=<secret>)"

    def write_private(self, path: Path) -> Path:
        """Write the private key to ``path``, readable by its owner only (0600)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(self.private_pem)
        return path


def generate_key_pair(algorithm: Algorithm = "RS384") -> KeyPair:
    """A fresh RSA 2048 (RS384) or P-384 (ES384) key pair; its ``kid`` is the JWK thumbprint."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if algorithm == "RS384":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    elif algorithm == "ES384":
        key = ec.generate_private_key(ec.SECP384R1())
        jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    else:
        raise ValueError("algorithm must be RS384 or ES384")
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_id = thumbprint(jwk)
    return KeyPair(algorithm, key_id, pem, {**jwk, "kid": key_id, "alg": algorithm, "use": "sig"})


def thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 thumbprint of a public JWK (SHA-256, base64url without padding)."""
    members = ("e", "kty", "n") if jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
