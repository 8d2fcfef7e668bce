"""The authorization server's signing keys: a JWKS file beside the database, mode 0600.

The first key signs; every key in the file verifies, so a rotation (``rotate_key``: a new key put first,
the old ones kept until the tokens they signed have expired) never invalidates a token in flight. Each key
carries a ``kid`` (RFC 7638 thumbprint) that tokens name in their header. ES256 (P-256), as the
development key of ``kzfhir token``; the published JWKS (``public_jwks``) holds only public members.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey

ALGORITHM = "ES256"


@dataclass(frozen=True, slots=True)
class SigningKeys:
    keys: tuple[ECKey, ...]

    @property
    def active(self) -> ECKey:
        return self.keys[0]

    def public_jwks(self) -> dict[str, Any]:
        return {"keys": [key.as_dict(private=False) for key in self.keys]}


def _new_key() -> ECKey:
    key = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": ALGORITHM}, private=True)
    key.ensure_kid()
    return key


def _write(path: Path, keys: list[ECKey], *, create: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"keys": [key.as_dict(private=True) for key in keys]}, indent=2)
    if create:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(body)
        return
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(body)
    os.replace(temporary, path)


def load_keys(path: Path) -> SigningKeys:
    data = json.loads(path.read_text(encoding="utf-8"))
    keys = tuple(ECKey.import_key(item) for item in data["keys"])
    if not keys:
        raise ValueError(f"{path}: the authorization server's key file holds no key")
    return SigningKeys(keys)


def ensure_keys(path: Path) -> SigningKeys:
    """The signing keys, created (one ES256 key) on first use."""
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another process created it first: use theirs
            _write(path, [_new_key()], create=True)
    return load_keys(path)


def rotate_key(path: Path, *, keep: int = 2) -> SigningKeys:
    """Put a new signing key first; keep the ``keep`` newest old keys for verifying tokens still in flight."""
    old = list(ensure_keys(path).keys)
    keys = [_new_key(), *old[:keep]]
    _write(path, keys, create=False)
    return SigningKeys(tuple(keys))
