"""The audit trail's rules as one object, for the backends (the audit seam, storage/audit.py).

Storage keeps the rows and never decides what they hold: how rows link and verify (chain.py), how
read blocks and templates are encoded and rendered (read_blocks.py), and which notices a block queues
(read_notices.py) are decided here and handed to a backend where the server is composed
(``fhir_server/backends.py``). ``CHAIN_RULES`` satisfies ``storage.audit.ChainRules``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fhir_server.security.audit import chain, read_blocks, read_notices
from fhir_server.storage.audit import ChainReport, ChainRowTuple, ChainStart


class HashChainRules:
    """SHA-256 chain of canonical AuditEvents, read blocks of journal records, one notice per patient."""

    __slots__ = ()

    @property
    def genesis(self) -> str:
        return chain.GENESIS_HASH

    @property
    def max_records(self) -> int:
        return read_blocks.MAX_RECORDS

    def link(self, prev_hash: str, data: bytes) -> str:
        return chain.link(prev_hash, data)

    def event_row(self, seq: int, prev_hash: str, event: Mapping[str, Any]) -> ChainRowTuple:
        return chain.make_row(seq, prev_hash, event).as_tuple()

    def verify(self, rows: Iterable[tuple[Any, ...]], anchors: Mapping[int, str] | None = None,
               start: ChainStart | None = None) -> ChainReport:
        return chain.verify_chain(rows, anchors, start)

    def template_bytes(self, caller: str | None, event: dict[str, Any]) -> bytes:
        return read_blocks.template_bytes(caller, event)

    def template_caller(self, data: bytes) -> str | None:
        caller = read_blocks.parse_template(data).get("caller")
        return caller if isinstance(caller, str) else None

    def block_bytes(self, records: bytes, templates: dict[str, int], recorded: str) -> bytes:
        return read_blocks.block_bytes(records, templates, recorded)

    def block_patients(self, data: bytes) -> list[str]:
        return read_blocks.block_patients(read_blocks.parse_block(data))

    def block(self, seq: int, data: bytes, template: Callable[[int], bytes]) -> read_blocks.BlockView:
        return read_blocks.BlockView(seq, data, template)

    def block_event_id(self, event_id: str) -> tuple[int, int] | None:
        found = read_blocks.EVENT_ID.match(event_id)
        return (int(found.group(1)), int(found.group(2))) if found is not None else None

    def position(self, seq: int, index: int = 0) -> int:
        return read_blocks.position(seq, index)

    def seq_of(self, position: int) -> int:
        return read_blocks.seq_of(position)

    def instant(self, micros: int) -> str:
        return read_blocks.micros_text(micros)

    def read_notices(self, blocks_by_patient: dict[str, list[int]]) -> list[tuple[str, str, str, bytes]]:
        return read_notices.notices(blocks_by_patient)

    def others_read(self, records: bytes, callers: dict[str, str | None], patients: set[str]) -> set[str]:
        return read_notices.others_read(records, callers, patients)


CHAIN_RULES = HashChainRules()
