"""Opaque paging cursors: a keyset position encoded into the ``_cursor`` link parameter.

Keyset paging (the last row's sort values, then type and id) instead of offsets keeps pages stable
while others write: a resource created or deleted between two page requests never shifts the rows
of the next page (issue 3 item 5, "cursors survive concurrent writes").
"""

from __future__ import annotations

import base64
import binascii

import orjson

from fhir_server.search.query import Cursor


def encode_cursor(cursor: Cursor) -> str:
    raw = orjson.dumps([cursor.direction, list(cursor.keys), cursor.resource_type, cursor.resource_id, cursor.total])
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(token: str) -> Cursor:
    """Raises ValueError for a token this server did not make."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
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
