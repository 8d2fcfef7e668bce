"""The audit target of a request as a whole, from its method and URL (for the record an interaction
that recorded nothing itself still gets: AC-14, "every attempt is audited")."""

from __future__ import annotations

from fhir_server.security.audit.balp import AuditTarget

_INTERACTIONS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def request_target(method: str, path: str, query: str) -> AuditTarget:
    """What a request was about, for its audit record when the interaction recorded none itself."""
    parts = [p for p in path.split("/") if p]
    rtype = parts[0] if parts and parts[0][:1].isupper() else None
    rid = parts[1] if len(parts) > 1 and not parts[1].startswith(("_", "$")) else None
    operation = next((p for p in parts if p.startswith("$")), None)
    if operation is not None:
        # the operation's name as the gate records it (operations/dispatch.py: query "$name"), then its
        # inputs: a refused call of a system-level operation is otherwise recorded by its query alone
        return AuditTarget("operation", rtype, rid, query=f"{operation}?{query}" if query else operation)
    if "_history" in parts:
        interaction = "vread" if parts[-2:-1] == ["_history"] else ("history-instance" if rid else
                                                                   "history-type" if rtype else "history-system")
    elif method in ("GET", "HEAD") or parts[-1:] == ["_search"]:
        interaction = "read" if rid and len(parts) == 2 else ("search-type" if rtype else "search-system")
    elif method == "POST" and not parts:
        interaction = "batch"
    else:
        interaction = _INTERACTIONS.get(method, "operation")
    return AuditTarget(interaction, rtype, rid, query=query or None)
