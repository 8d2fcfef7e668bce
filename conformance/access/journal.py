"""Every request the kit sent as a test identity, with what the rules say the server must record of it:
an AuditEvent always (AC-14), a line in the patient's access log (AC-24), a notice to the patient (AC-18)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Access", "Journal"]


@dataclass(frozen=True, slots=True)
class Access:
    who: str  # the identity's label ("unconsented Practitioner/7"), "writer" for the kit's main token
    reference: str | None  # the identity's fhirUser, when it has one
    request: str  # "GET Observation/123"
    request_id: str  # the X-Request-Id sent
    status: int
    at: datetime
    target: str | None = None  # the patient's resource it touched ("Observation/123"), if one
    in_log: bool = False  # must be in the patient's access log (AC-24, TM-18)
    notify: bool = False  # the patient must be notified of it (AC-18)
    emergency: bool = False  # break-glass (AC-02): the record must say so

    def describe(self) -> str:
        return f"{self.request} as {self.who} → {self.status} (X-Request-Id {self.request_id})"


@dataclass
class Journal:
    accesses: list[Access] = field(default_factory=list)

    def add(self, access: Access) -> None:
        self.accesses.append(access)

    def audited(self) -> list[Access]:
        return list(self.accesses)

    def logged(self) -> list[Access]:
        return [a for a in self.accesses if a.in_log]

    def notified(self) -> list[Access]:
        return [a for a in self.accesses if a.notify]
