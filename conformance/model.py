"""Values of the kit: a check's declaration, its outcome and the evidence it collected."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conformance.context import RunContext

__all__ = [
    "Check",
    "CheckFailed",
    "CheckResult",
    "CheckSkipped",
    "Evidence",
    "KitError",
    "Outcome",
    "Status",
    "failed",
    "passed",
    "skipped",
    "warning",
]


class Status(StrEnum):
    """``error`` means the kit itself could not finish the check (transport failure, kit bug)."""

    PASS = "pass"
    FAIL = "fail"
    WARNING = "warning"
    SKIPPED = "skipped"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One HTTP exchange seen during a check. No request headers are kept, so no token reaches a report;
    ``identity`` names the test identity the request was sent as (its role and reference, never its token)."""

    request: str  # "POST https://host/fhir/Patient"
    status: int | None
    headers: dict[str, str] = field(default_factory=dict)  # ETag, Location, Content-Type, Last-Modified
    excerpt: str = ""
    identity: str = ""  # "" = the kit's main (writer) credentials
    elapsed_ms: int | None = None
    request_id: str = ""  # the X-Request-Id the kit sent: how the audit checks find the server's record


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    message: str = ""


def passed(message: str = "") -> Outcome:
    return Outcome(Status.PASS, message)


def failed(message: str) -> Outcome:
    return Outcome(Status.FAIL, message)


def warning(message: str) -> Outcome:
    return Outcome(Status.WARNING, message)


def skipped(message: str) -> Outcome:
    return Outcome(Status.SKIPPED, message)


class CheckFailed(Exception):
    """Raised by helpers deep inside a check: the check fails with this message."""


class CheckSkipped(Exception):
    """Raised when a check cannot be judged with this token or this server (the message says why)."""


class KitError(Exception):
    """The kit cannot judge because its own set-up is at fault (e.g. the server rejects its token):
    the check is reported as ``error`` and the run exits 2, not 1."""


CheckFunc = Callable[["RunContext"], Awaitable[Outcome]]


@dataclass(frozen=True, slots=True)
class Check:
    """``covers``: requirement IDs (requirements.md) and FHIR R4 spec sections the check proves."""

    id: str
    group: str
    title: str
    covers: tuple[str, ...]
    func: CheckFunc


@dataclass(frozen=True, slots=True)
class CheckResult:
    id: str
    group: str
    title: str
    covers: tuple[str, ...]
    status: Status
    message: str
    evidence: tuple[Evidence, ...] = ()
    duration_ms: int = 0
    evidence_omitted: int = 0
