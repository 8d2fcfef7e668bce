"""The seam of NEHP delivery formats: one adapter turns a record into the bytes one receiver accepts."""

from __future__ import annotations

from typing import Protocol

from mappings.model import RemoteServiceRecord


class NehpAdapter(Protocol):
    """Writes a :class:`RemoteServiceRecord` in one NEHP message format.

    ``name`` is the key the adapter is registered under (``mappings.nehp.get_adapter(name)``) and
    ``media_type`` the Content-Type of the bytes. ``to_message`` raises
    :class:`mappings.errors.IncompleteRecordError` for a record with error issues and is otherwise
    deterministic: the same record gives the same bytes, so a redelivery is byte-identical.
    """

    @property
    def name(self) -> str: ...

    @property
    def media_type(self) -> str: ...

    def to_message(self, record: RemoteServiceRecord) -> bytes: ...
