"""Judging probes of hidden data: what a caller without consent got, compared with what it gets when
nothing exists. Problems fail the check; remarks (a refusal that differs only as 403 from 404, which
R4 security.html allows) make it a warning."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from conformance.access.leaks import differs, hidden_in, leaked
from conformance.access.scenario import Scenario
from conformance.context import RunContext
from conformance.http import json_body
from conformance.identities import Identity
from conformance.model import Outcome, failed, passed, warning

__all__ = ["Findings", "Req", "absent_id", "probe_pair"]


@dataclass(frozen=True)
class Req:
    """One request of a probe: path relative to the base, query parameters, JSON body, headers."""

    path: str
    params: dict[str, str] | None = None
    json: Any = None
    headers: dict[str, str] | None = None
    content: bytes | None = None

    def kwargs(self) -> dict[str, Any]:
        return {"params": self.params, "json": self.json, "headers": self.headers, "content": self.content}


def absent_id() -> str:
    """An id no server holds: the "nothing matches" side of a comparison. It looks like any server id
    (a UUID), so a server cannot tell the twin of a probe from the probe and answer the two alike."""
    return str(uuid.uuid4())


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    probes: int = 0

    def judge(self, what: str, response: httpx.Response, sc: Scenario) -> None:
        """What the caller got for ``what``: hidden resources served, hidden values named."""
        self.probes += 1
        served = hidden_in(json_body(response), sc.hidden(), sc.patient_ref)
        if served:
            self.problems.append(f"{what}: HTTP {response.status_code} served {', '.join(served)}")
        named = leaked(response, sc.markers())
        if named:
            self.problems.append(f"{what}: the answer names {', '.join(named)} (HTTP {response.status_code})")

    def compare(self, what: str, hidden: httpx.Response, absent: httpx.Response, *, read: bool) -> None:
        """The answers must not differ. For a read by id, 403 (hidden) against 404 (unknown) is only a
        remark: R4 lets a server refuse with 403; elsewhere any difference is an existence oracle."""
        difference = differs(hidden, absent)
        if difference is None:
            return
        statuses = (hidden.status_code, absent.status_code)
        if read and statuses == (403, 404):
            self.remarks.append(f"{what}: {difference} (the refusal tells that the resource exists)")
        else:
            self.problems.append(f"{what}: {difference}")

    def outcome(self, success: str) -> Outcome:
        if self.problems:
            return failed("; ".join(self.problems))
        if self.remarks:
            return warning("; ".join(self.remarks))
        return passed(f"{success} ({self.probes} probes)")


async def probe_pair(
    ctx: RunContext, sc: Scenario, findings: Findings, identity: Identity, method: str,
    hidden: Req, absent: Req, *, what: str, read: bool = False, target: str | None = None,
    in_log: bool = False,
) -> tuple[httpx.Response, httpx.Response]:
    """Send the probe of hidden data and its twin for absent data as ``identity``, judge both."""
    got = await sc.access(ctx, identity, method, hidden.path, target=target, in_log=in_log, **hidden.kwargs())
    baseline = await sc.access(ctx, identity, method, absent.path, **absent.kwargs())
    findings.judge(what, got, sc)
    findings.compare(what, got, baseline, read=read)
    return got, baseline
