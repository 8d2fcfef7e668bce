"""Opaque paging cursors: a keyset position encoded into the ``_cursor`` link parameter.

Keyset paging (the last row's sort values, then type and id) instead of offsets keeps pages stable
while others write: a resource created or deleted between two page requests never shifts the rows
of the next page (issue 3 item 5, "cursors survive concurrent writes").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fhir_server.search.query import Cursor

_KEY = AESGCM(os.urandom(32))


def use_key(secret: str) -> None:
    """Seal cursors with a key derived from ``secret`` (servers sharing one database must share it);
    by default each process makes its own, and cursors of a restarted server are refused as expired."""
    global _KEY
    _KEY = AESGCM(hashlib.sha256(b"kzfhir-cursor:" + secret.encode()).digest())


def seal(raw: bytes) -> str:
    """An opaque, authenticated token: a cursor names the last row of a page, which may be a resource
    the access policy hid, and its sort values and the total; none of that may be readable or forged."""
    nonce = os.urandom(12)
    return base64.urlsafe_b64encode(nonce + _KEY.encrypt(nonce, raw, None)).decode("ascii").rstrip("=")


def unseal(token: str) -> bytes:
    """The sealed bytes; ValueError for a token this server (process, key) did not make."""
    try:
        blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return _KEY.decrypt(blob[:12], blob[12:], None)
    except (binascii.Error, InvalidTag, ValueError) as exc:
        raise ValueError("paging cursor is malformed or expired") from exc


def encode_cursor(cursor: Cursor) -> str:
    raw = orjson.dumps([cursor.direction, list(cursor.keys), cursor.resource_type, cursor.resource_id, cursor.total])
    return seal(raw)


def decode_cursor(token: str) -> Cursor:
    """Raises ValueError for a token this server did not make."""
    try:
        raw = unseal(token)
        direction, keys, resource_type, resource_id, total = orjson.loads(raw)
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError) as exc:
        raise ValueError("malformed paging cursor") from exc
    if direction not in ("next", "prev") or not isinstance(keys, list):
        raise ValueError("malformed paging cursor")
    if not isinstance(resource_type, str) or not isinstance(resource_id, str):
        raise ValueError("malformed paging cursor")
    if not all(k is None or isinstance(k, str | int | float) for k in keys):
        raise ValueError("malformed paging cursor")
    if total is not None and (not isinstance(total, int) or total < 0):
        raise ValueError("malformed paging cursor")
    return Cursor(direction, tuple(keys), resource_type, resource_id, total)
