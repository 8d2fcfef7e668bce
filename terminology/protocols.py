"""The seam other packages depend on: the profile validator needs only membership checks."""

from __future__ import annotations

from typing import Protocol


class MembershipChecker(Protocol):
    """Answers binding checks: True, False, or None when the server cannot tell (code system not held)."""

    def check_membership(self, valueset_url: str, system: str | None, code: str) -> bool | None: ...

    def has_valueset(self, url: str) -> bool: ...
