"""The values the access policy speaks in: actions, the three-valued Decision, and Verdicts.

House style §5: ``PROCEED`` (no objection at this stage; per-resource checks still apply),
``AUTHORIZED`` (allowed, nothing further to check), ``REJECT`` (denied). A Verdict carries the
decision plus what the audit and the notification outbox need: the reason, the grounds (own
compartment, which Consent, break-glass, legal exception) and the emergency flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Decision(Enum):
    PROCEED = "proceed"
    AUTHORIZED = "authorized"
    REJECT = "reject"


class Action(Enum):
    READ = "read"
    VREAD = "vread"
    SEARCH = "search"
    HISTORY = "history"
    CREATE = "create"
    UPDATE = "update"
    PATCH = "patch"
    DELETE = "delete"
    OPERATION = "operation"
    EXPORT = "export"

    @property
    def is_read(self) -> bool:
        return self in READ_ACTIONS

    @property
    def is_write(self) -> bool:
        return self in WRITE_ACTIONS


READ_ACTIONS = frozenset({Action.READ, Action.VREAD, Action.SEARCH, Action.HISTORY, Action.OPERATION, Action.EXPORT})
WRITE_ACTIONS = frozenset({Action.CREATE, Action.UPDATE, Action.PATCH, Action.DELETE})

#: http://terminology.hl7.org/CodeSystem/consentaction codes that cover each action, for
#: ``Consent.provision.action``: reading is "access" (and "use", which includes retrieval),
#: bulk export is "disclose" (data leave the server), creating is "collect", changing or
#: removing is "correct" (R4 consentaction definitions).
CONSENT_ACTIONS: dict[Action, frozenset[str]] = {
    **{action: frozenset({"access", "use"}) for action in (Action.READ, Action.VREAD, Action.SEARCH)},
    Action.HISTORY: frozenset({"access", "use"}),
    Action.OPERATION: frozenset({"access", "use"}),
    Action.EXPORT: frozenset({"disclose"}),
    Action.CREATE: frozenset({"collect"}),
    Action.UPDATE: frozenset({"correct"}),
    Action.PATCH: frozenset({"correct"}),
    Action.DELETE: frozenset({"correct"}),
}


def smart_permissions(action: Action, *, instance_level: bool = False) -> str:
    """SMART v2 permission letters an action needs (all of them): c, r, u, d, s.

    SMART v2: ``r`` covers read, vread and instance history; ``s`` covers search and type/system
    history; a bulk export needs both (it reads and enumerates).
    """
    if action is Action.HISTORY:
        return "r" if instance_level else "s"
    return {
        Action.READ: "r",
        Action.VREAD: "r",
        Action.SEARCH: "s",
        Action.OPERATION: "r",
        Action.EXPORT: "rs",
        Action.CREATE: "c",
        Action.UPDATE: "u",
        Action.PATCH: "u",
        Action.DELETE: "d",
    }[action]


@dataclass(frozen=True, slots=True)
class Verdict:
    """One policy decision and why.

    ``grounds`` are short codes: ``own-compartment``, ``self``, ``representative``,
    ``consent``, ``directory``, ``oversight``, ``break-glass``, ``legal-exception``,
    ``data-subject-request``. ``consents`` lists the Consent references that granted access
    (for the BALP entity and the access log). ``emergency`` is set for break-glass access, which the
    lead must audit with purpose BTG and notify to the patient (AC-02).
    """

    decision: Decision
    reason: str
    grounds: tuple[str, ...] = ()
    consents: tuple[str, ...] = ()
    emergency: bool = False
    legal_basis: str | None = None
    #: access beyond duties, flagged in the audit for the auditor (AC-20, policy/duties.py)
    flags: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.decision is not Decision.REJECT

    @classmethod
    def reject(cls, reason: str) -> Verdict:
        return cls(Decision.REJECT, reason)

    @classmethod
    def proceed(cls, reason: str = "type-level checks passed") -> Verdict:
        return cls(Decision.PROCEED, reason)
