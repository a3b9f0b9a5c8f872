"""Client key pairs: the private key signs what the public JWK verifies; the file is 0600."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import jwt
import pytest
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from fhir_bridge.sandbox import generate_key_pair
from fhir_bridge.sandbox._keys import thumbprint


@pytest.mark.parametrize("algorithm", ["RS384", "ES384"])
def test_what_the_private_key_signs_the_public_jwk_verifies(algorithm: str) -> None:
    pair = generate_key_pair(algorithm)  # type: ignore[arg-type]
    jwk = pair.public_jwk
    assert (jwk["alg"], jwk["use"], jwk["kid"]) == (algorithm, "sig", pair.key_id)
    assert "d" not in jwk  # public only
    signed = jwt.encode({"sub": "x"}, pair.private_pem, algorithm=algorithm)
    loader = RSAAlgorithm if algorithm == "RS384" else ECAlgorithm
    public = loader.from_jwk(json.dumps(jwk))
    assert jwt.decode(signed, public, algorithms=[algorithm]) == {"sub": "x"}  # type: ignore[arg-type]
    if algorithm == "ES384":
        assert jwk["crv"] == "P-384"


def test_the_key_id_is_a_thumbprint_of_the_key_material_only() -> None:
    """RFC 7638: the required members only, so kid/alg/use and member order do not count;
    SHA-256 in base64url without padding (43 characters)."""
    pair = generate_key_pair("RS384")
    bare = {k: pair.public_jwk[k] for k in ("n", "e", "kty")}
    assert thumbprint(bare) == thumbprint(dict(reversed(pair.public_jwk.items()))) == pair.key_id
    assert len(pair.key_id) == 43
    assert set(pair.key_id) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
    assert generate_key_pair("RS384").key_id != pair.key_id
    ec = generate_key_pair("ES384")
    assert thumbprint({k: ec.public_jwk[k] for k in ("crv", "kty", "x", "y")}) == ec.key_id


def test_the_private_key_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    pair = generate_key_pair("ES384")
    path = pair.write_private(tmp_path / "smart" / "client-key.pem")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == pair.private_pem
    assert "PRIVATE" not in repr(pair)
    pair.write_private(path)  # again: replaced, still 0600
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
