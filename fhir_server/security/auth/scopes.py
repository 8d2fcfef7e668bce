"""SMART on FHIR scopes: v2 ``patient/Observation.rs`` with v1 ``.read``/``.write``/``.*`` accepted.

SMART App Launch v2 (scopes-and-launch-context): a resource scope is
``<level>/<ResourceType|*>.<permissions>`` where level is ``patient``, ``user`` or ``system``
and permissions are a subset of ``c r u d s`` written in that order. SMART v1 spellings map to
v2 as ``read`` -> ``rs``, ``write`` -> ``cud``, ``*`` -> ``cruds``.

Scopes only ever *restrict*: the access policy applies its role and consent rules on top, so a
broad scope never widens what a role may reach. Non-resource scopes (``openid``, ``fhirUser``,
``launch/patient``, ``offline_access`` ...) are not resource permissions and are ignored here.

Granular v2 scopes with a query (``patient/Observation.rs?category=vital-signs``, SMART 2.x
"finer-grained resource constraints using search parameters") *reach* their type, but grant access
only to the resources matching the query: ``covers`` (unrestricted coverage) is false for them, and the
access policy checks each resource against the query with the search engine
(security/policy/granular.py). A granular scope that cannot be enforced grants nothing; it is never
widened into the unfiltered one (deny by default, AC-12).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

LEVELS = ("patient", "user", "system")
PERMISSION_ORDER = "cruds"
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(
    r"^(?P<level>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]{1,63})\.(?P<perm>[a-z*]+)(?:\?(?P<query>.*))?$"
)


@dataclass(frozen=True, slots=True)
class Scope:
    """One parsed resource scope."""

    level: str
    resource_type: str
    permissions: frozenset[str]
    query: str | None = None

    @property
    def granular(self) -> bool:
        return self.query is not None

    def reaches(self, resource_type: str, permission: str) -> bool:
        """True when this scope grants ``permission`` (one of c r u d s) on some or all resources of
        ``resource_type`` (all of them unless it is granular)."""
        return permission in self.permissions and self.resource_type in ("*", resource_type)

    def covers(self, resource_type: str, permission: str) -> bool:
        """True when this scope grants ``permission`` (one of c r u d s) on every resource of
        ``resource_type`` (a granular scope only on those matching its query, so never here)."""
        return not self.granular and self.reaches(resource_type, permission)


def _v2_permissions(text: str) -> frozenset[str] | None:
    """Permissions of a v2 string; None unless it is a non-empty, ordered subset of ``cruds``."""
    position = -1
    for letter in text:
        index = PERMISSION_ORDER.find(letter)
        if index <= position:
            return None
        position = index
    return frozenset(text) if text else None


@lru_cache(maxsize=4096)
def parse_scope(text: str) -> Scope | None:
    """Parse one scope string; None for non-resource or malformed scopes (they grant nothing)."""
    match = _SCOPE.match(text.strip())
    if match is None:
        return None
    perm = match.group("perm")
    permissions = frozenset(_V1[perm]) if perm in _V1 else _v2_permissions(perm)
    if permissions is None:
        return None
    return Scope(match.group("level"), match.group("type"), permissions, match.group("query"))


def parse_scopes(scopes: Iterable[str] | str) -> tuple[Scope, ...]:
    """All resource scopes of a space-separated string or a sequence of scope strings."""
    items = scopes.split() if isinstance(scopes, str) else scopes
    return tuple(scope for scope in (parse_scope(item) for item in items) if scope is not None)


def levels_allowing(scopes: Iterable[str], resource_type: str, permission: str) -> frozenset[str]:
    """The scope levels (patient/user/system) whose scopes grant ``permission`` on the type."""
    if permission not in PERMISSION_ORDER or len(permission) != 1:
        raise ValueError(f"permission must be one of c, r, u, d, s, not {permission!r}")
    return frozenset(scope.level for scope in parse_scopes(tuple(scopes)) if scope.covers(resource_type, permission))


def levels_reaching(scopes: Iterable[str], resource_type: str, permission: str) -> frozenset[str]:
    """The scope levels whose scopes grant ``permission`` on some resources of the type (granular ones
    included: the type-level gate lets them through, each resource is then checked against the query)."""
    return frozenset(scope.level for scope in parse_scopes(tuple(scopes)) if scope.reaches(resource_type, permission))


def scope_allows(scopes: Iterable[str], resource_type: str, action: str) -> bool:
    """True when any scope grants the SMART permission ``action`` (c, r, u, d or s) on the type."""
    return bool(levels_allowing(scopes, resource_type, action))
