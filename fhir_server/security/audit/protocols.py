"""The audit seam (house style §7): builders make AuditEvents, a sink stores or forwards them."""

from __future__ import annotations

from typing import Any, Protocol


class AuditSink(Protocol):
    """Where AuditEvents go: the store's hash chain, the outbox, a log.

    Implementations must be durable before returning for writes (the event belongs to the same
    atomic unit as the change) and may batch reads, but must not drop them (AC-14).
    """

    async def record(self, event: dict[str, Any]) -> None: ...
