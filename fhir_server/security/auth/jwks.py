"""Where the trusted signing keys come from: a JWKS file or URL, cached with a time to live."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from fhir_server.security.auth.errors import AuthError

_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k"})


def key_set_from_json(data: Any) -> KeySet:
    """Import a JWKS document; private members, if present (the dev key file), are not used."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError("a JWKS document is an object with a 'keys' array")
    public = [{k: v for k, v in key.items() if k not in _PRIVATE_MEMBERS} for key in data["keys"]]
    try:
        return KeySet.import_key_set({"keys": public})
    except JoseError as error:
        raise ValueError(f"invalid JWKS: {error}") from error


class JwksSource:
    """A cached JWKS. Re-read after ``ttl_seconds``, or earlier (at most every
    ``min_refresh_seconds``) when a token names a key id the cache does not know: that is how
    key rotation at the identity provider reaches the server without a restart.
    """

    def __init__(
        self,
        *,
        path: Path | None = None,
        url: str | None = None,
        ttl_seconds: float = 300.0,
        min_refresh_seconds: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (path is None) == (url is None):
            raise ValueError("configure exactly one of a JWKS file path or a JWKS URL")
        self._path, self._url = path, url
        self._ttl, self._min_refresh = ttl_seconds, min_refresh_seconds
        self._transport, self._clock = transport, clock
        self._keys: KeySet | None = None
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key_set(self, *, refresh: bool = False) -> KeySet:
        """The current keys; ``refresh`` asks for a re-read (honoured at most every few seconds)."""
        age = self._clock() - self._loaded_at
        if self._keys is not None and age < self._ttl and not (refresh and age >= self._min_refresh):
            return self._keys
        async with self._lock:
            age = self._clock() - self._loaded_at
            if self._keys is None or age >= self._ttl or (refresh and age >= self._min_refresh):
                await self._reload()
        assert self._keys is not None
        return self._keys

    async def _reload(self) -> None:
        try:
            data = await self._fetch()
            self._keys = key_set_from_json(data)
        except (OSError, ValueError, httpx.HTTPError) as error:
            if self._keys is None:
                raise AuthError("signing keys are unavailable") from error
            # Keep serving the last good key set: a JWKS outage must not log everybody out.
        self._loaded_at = self._clock()

    async def _fetch(self) -> Any:
        if self._path is not None:
            return json.loads(self._path.read_text(encoding="utf-8"))
        assert self._url is not None
        async with httpx.AsyncClient(transport=self._transport, timeout=5.0) as client:
            response = await client.get(self._url, headers={"Accept": "application/json"})
            response.raise_for_status()
            return response.json()
