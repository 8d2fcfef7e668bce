"""Where checks are declared (``@check``) and selected (``--only``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from conformance.model import Check, CheckFunc

__all__ = ["GROUPS", "check", "registered", "select"]

# Report order. Groups that need resources created by earlier groups create them on demand (fixtures.py),
# so any subset can run alone.
GROUPS: tuple[str, ...] = (
    "capability", "security", "access", "rest", "kz-profiles", "vendor-data", "search", "transaction",
    "terminology",
)

_CHECKS: dict[str, Check] = {}


def check(check_id: str, group: str, title: str, covers: Iterable[str]) -> Callable[[CheckFunc], CheckFunc]:
    """Register ``func`` as check ``check_id`` of ``group``; IDs are unique and stable across releases."""
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r}")

    def register(func: CheckFunc) -> CheckFunc:
        if check_id in _CHECKS:
            raise ValueError(f"duplicate check id {check_id}")
        _CHECKS[check_id] = Check(check_id, group, title, tuple(covers), func)
        return func

    return register


def registered() -> list[Check]:
    """Every check, in group order and, within a group, by ID (IDs are zero-padded: KZ-08 < KZ-10)."""
    import conformance.checks  # noqa: F401  (importing the package declares its checks)

    rank = {group: i for i, group in enumerate(GROUPS)}
    return sorted(_CHECKS.values(), key=lambda c: (rank[c.group], c.id))


def select(only: Iterable[str] | None) -> list[Check]:
    """The checks named by group or by check ID (case-insensitive); all of them when ``only`` is None."""
    checks = registered()
    if only is None:
        return checks
    wanted = {name.lower() for name in only}
    unknown = wanted - {c.group for c in checks} - {c.id.lower() for c in checks}
    if unknown:
        raise ValueError(f"unknown check group or id: {', '.join(sorted(unknown))} "
                         f"(groups: {', '.join(GROUPS)})")
    return [c for c in checks if c.group in wanted or c.id.lower() in wanted]
