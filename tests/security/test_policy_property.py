"""Hypothesis: for random consents, roles and requests the engine agrees with a brute-force reading
of the documented rules (docs/security.md) — in particular it never permits what that reading denies.

The oracle below is written independently of the engine: it flattens every Consent into its
provision paths, checks each condition with plain loops over the raw JSON, and applies the role
rules as a flat list. Dates are generated on whole years so the oracle can compare years.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fhir_server.security.context import RequestContext
from fhir_server.security.policy import AccessPolicy, Action, PatientFacts
from fhir_server.security.refs import BIN_SYSTEM
from tests.security.security_builders import ORG_BIN, PRIVACY, ctx, representative

NOW = 1_750_000_000.0  # mid-June 2025
YEAR = 2025
POLICY = AccessPolicy(clock=lambda: NOW)
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ACTION_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentaction"
TYPES_SYSTEM = "http://hl7.org/fhir/resource-types"
LABEL = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
CODES = ("8867-4", "1111-1")

CALLERS: dict[str, RequestContext] = {
    "owner": ctx("patient", "Patient/7"),
    "other-patient": ctx("patient", "Patient/8"),
    "guardian": ctx("related-person", "RelatedPerson/r1"),
    "relative": ctx("related-person", "RelatedPerson/r2"),
    "doctor": ctx("practitioner", "Practitioner/1", organization_bin=ORG_BIN),
    "doctor-narrow": ctx("practitioner", "Practitioner/1", scopes=("user/Observation.rs",)),
    "nurse": ctx("practitioner", "Practitioner/2"),
    "emergency": ctx("practitioner", "Practitioner/2", break_glass_reason="coma", break_glass_until=int(NOW) + 60),
    "emergency-over": ctx("practitioner", "Practitioner/2", break_glass_reason="coma", break_glass_until=int(NOW) - 1),
    "system": ctx("system", None, organization_bin=ORG_BIN),
    "auditor": ctx("auditor", "Practitioner/50"),
    "admin": ctx("admin", "Practitioner/60"),
    "court": ctx("legal-exception", "Practitioner/70", legal_basis="order 5"),
    "court-no-basis": ctx("legal-exception", "Practitioner/70"),
}
ACTOR_REFS = ("Practitioner/1", "Practitioner/2", "CareTeam/team1", "RelatedPerson/r2", "Patient/8", "BIN")


def _actor(ref: str) -> dict[str, Any]:
    if ref == "BIN":
        return {"role": {"text": "org"}, "reference": {"identifier": {"system": BIN_SYSTEM, "value": ORG_BIN}}}
    return {"role": {"text": "recipient"}, "reference": {"reference": ref}}


def _years(start: int | None, end: int | None) -> dict[str, str]:
    period = {}
    if start is not None:
        period["start"] = f"{start}-01-01"
    if end is not None:
        period["end"] = f"{end}-12-31"
    return period


years = st.sampled_from([None, 2023, 2024, 2025, 2026])


@st.composite
def periods(draw: st.DrawFn) -> dict[str, str]:
    start, end = draw(years), draw(years)
    if start is not None and end is not None and end < start:
        start, end = end, start
    return _years(start, end)


@st.composite
def conditions(draw: st.DrawFn, rare: int = 4) -> dict[str, Any]:
    """Random provision conditions; each kind appears with probability about 1/rare."""
    node: dict[str, Any] = {}

    def some() -> bool:
        return draw(st.integers(0, rare - 1)) == 0

    if draw(st.booleans()):
        node["actor"] = [_actor(r) for r in draw(st.lists(st.sampled_from(ACTOR_REFS), min_size=1, max_size=3))]
    if some():
        picked = draw(st.lists(st.sampled_from(["access", "collect", "correct", "disclose"]), min_size=1, max_size=3))
        node["action"] = [{"coding": [{"system": ACTION_SYSTEM, "code": code}]} for code in picked]
    if some():
        node["purpose"] = [
            {"system": ACT_REASON, "code": draw(st.sampled_from(["TREAT", "HOPERAT", "FAMRQT", "HRESCH"]))}
        ]
    if some():
        node["class"] = [{"system": TYPES_SYSTEM, "code": draw(st.sampled_from(["Observation", "Condition"]))}]
    if some():
        node["code"] = [{"coding": [{"system": "http://loinc.org", "code": draw(st.sampled_from(CODES))}]}]
    if some():
        node["securityLabel"] = [LABEL]
    if some():
        node["dataPeriod"] = draw(periods())
    if some():
        node["period"] = draw(periods())
    return node


def provisions(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        node = draw(conditions())
        kind = draw(st.sampled_from(["permit", "permit", "permit", "deny", None]))
        if kind:
            node["type"] = kind
        if depth > 0:
            children = draw(st.lists(provisions(depth - 1), max_size=2))
            if children:
                node["provision"] = children
        return node

    return build()


@st.composite
def consents(draw: st.DrawFn, index: int) -> dict[str, Any]:
    root = draw(conditions(rare=8)) if draw(st.integers(0, 2)) == 0 else {}
    if draw(st.integers(0, 5)) == 0:
        root["type"] = draw(st.sampled_from(["permit", "deny"]))
    children = draw(st.lists(provisions(2), max_size=3))
    if children:
        root["provision"] = children
    document: dict[str, Any] = {
        "resourceType": "Consent",
        "id": f"c{index}",
        "status": draw(st.sampled_from(["active"] * 6 + ["inactive", "proposed"])),
        "scope": draw(st.sampled_from([PRIVACY] * 5 + [{"coding": [{"code": "treatment"}]}])),
        "patient": {"reference": "Patient/7"},
        "policyRule": {"coding": [{"code": draw(st.sampled_from(["OPTIN", "OPTIN", "OPTOUT"]))}]},
        "provision": root,
    }
    performer = draw(
        st.sampled_from([None, None, "Patient/7", "Practitioner/1", "RelatedPerson/r1", "RelatedPerson/r2"])
    )
    if performer:
        document["performer"] = [{"reference": performer}]
    return document


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["Observation", "Condition"]))
    year = draw(st.sampled_from([2023, 2024, 2025]))
    resource: dict[str, Any] = {
        "resourceType": kind,
        "id": "x1",
        "code": {"coding": [{"system": "http://loinc.org", "code": draw(st.sampled_from(CODES))}]},
        "subject": {"reference": "Patient/7"},
    }
    if kind == "Observation":
        resource["status"] = "final"
        resource["effectiveDateTime"] = f"{year}-06-15T12:00:00Z"
    else:
        resource["recordedDate"] = f"{year}-06-15"
    if draw(st.booleans()):
        resource["meta"] = {"security": [LABEL]}
    return resource


@st.composite
def care(draw: st.DrawFn) -> list[dict[str, Any]]:
    if not draw(st.booleans()):
        return []
    members = draw(st.lists(st.sampled_from(["Practitioner/1", "Practitioner/2"]), max_size=2, unique=True))
    return [
        {
            "resourceType": "CareTeam",
            "id": "team1",
            "status": draw(st.sampled_from(["active", "inactive"])),
            "subject": {"reference": "Patient/7"},
            "participant": [{"member": {"reference": m}} for m in members],
        }
    ]


# ----------------------------------------------------------------------------- the oracle


def _year_of(resource: dict[str, Any]) -> int:
    text = str(resource.get("effectiveDateTime") or resource["recordedDate"])
    return int(text[:4])


def _within(period: dict[str, str] | None, year: int) -> bool:
    if not period:
        return True
    low = int(period["start"][:4]) if "start" in period else -1
    high = int(period["end"][:4]) if "end" in period else 10_000
    return low <= year <= high


def _identities(caller: RequestContext, team: list[dict[str, Any]]) -> set[str]:
    found = set()
    if caller.fhir_user:
        found.add(caller.fhir_user)
    if caller.organization_bin:
        found.add("BIN")
    for t in team:
        if t["status"] == "active" and any(p["member"]["reference"] == caller.fhir_user for p in t["participant"]):
            found.add("CareTeam/team1")
    return found


def _condition_holds(
    node: dict[str, Any], who: set[str], consent_actions: set[str], purpose: str, res: dict[str, Any]
) -> bool:
    if "period" in node and not _within(node["period"], YEAR):
        return False
    if "actor" in node:
        named = set()
        for a in node["actor"]:
            ref = a["reference"]
            named.add("BIN" if "identifier" in ref else ref["reference"])
        if not named & who:
            return False
    if "action" in node and not {c["coding"][0]["code"] for c in node["action"]} & consent_actions:
        return False
    if "purpose" in node and purpose not in {p["code"] for p in node["purpose"]}:
        return False
    if "class" in node and res["resourceType"] not in {c["code"] for c in node["class"]}:
        return False
    if "code" in node and res["code"]["coding"][0]["code"] not in {c["coding"][0]["code"] for c in node["code"]}:
        return False
    if "securityLabel" in node and LABEL not in res.get("meta", {}).get("security", []):
        return False
    return not ("dataPeriod" in node and not _within(node["dataPeriod"], _year_of(res)))


def _paths(node: dict[str, Any], trail: tuple[dict[str, Any], ...] = ()) -> list[tuple[dict[str, Any], ...]]:
    here = (*trail, node)
    found = [here]
    for child in node.get("provision", []):
        found += _paths(child, here)
    return found


def _consent_says(document: dict[str, Any], holds: Any) -> str | None:
    root = document["provision"]
    base = "deny" if document["policyRule"]["coding"][0]["code"] == "OPTOUT" else None
    effective = [path for path in _paths(root) if all(holds(n) for n in path)]
    frontier = [p for p in effective if not any(len(q) == len(p) + 1 and q[: len(p)] == p for q in effective)]
    kinds = set()
    for path in frontier:
        node = path[-1]
        kinds.add(node.get("type") or (base if len(path) == 1 else "deny"))
    return "deny" if "deny" in kinds else "permit" if "permit" in kinds else None


LETTERS = {Action.READ: "r", Action.SEARCH: "s", Action.CREATE: "c", Action.UPDATE: "u", Action.DELETE: "d"}
CONSENT_ACTION = {
    Action.READ: {"access", "use"},
    Action.SEARCH: {"access", "use"},
    Action.EXPORT: {"disclose"},
    Action.CREATE: {"collect"},
    Action.UPDATE: {"correct"},
    Action.DELETE: {"correct"},
}
PURPOSE = {"patient": "PATRQT", "related-person": "FAMRQT", "practitioner": "TREAT", "system": "HOPERAT"}


def _scope_ok(caller: RequestContext, action: Action, res_type: str) -> bool:
    needed = "rs" if action is Action.EXPORT else LETTERS[action]
    for letter in needed:
        if not any(
            (s.split("/")[1].split(".")[0] in ("*", res_type)) and letter in s.split(".")[1] for s in caller.scopes
        ):
            return False
    return True


def oracle(
    caller: RequestContext,
    action: Action,
    res: dict[str, Any],
    docs: list[dict[str, Any]],
    team: list[dict[str, Any]],
    guardian_verified: bool,
) -> bool:
    reading = action in (Action.READ, Action.SEARCH, Action.EXPORT)
    if not _scope_ok(caller, action, res["resourceType"]) or caller.role in ("auditor", "admin"):
        return False
    if caller.role == "legal-exception":
        return bool(caller.legal_basis) and action in (Action.READ, Action.SEARCH)
    owner = caller.fhir_user == "Patient/7" or (caller.fhir_user == "RelatedPerson/r1" and guardian_verified)
    if owner:
        return reading or (action is not Action.DELETE and res["resourceType"] == "Observation")
    signers = {None, "Patient/7"} | ({"RelatedPerson/r1"} if guardian_verified else set())
    counting = [
        d
        for d in docs
        if d["status"] == "active"
        and d["scope"] is PRIVACY
        and (d.get("performer", [{}])[0].get("reference") in signers)
    ]
    who = _identities(caller, team)
    purpose = PURPOSE[caller.role or ""]
    sayings = {
        _consent_says(d, lambda n: _condition_holds(n, who, CONSENT_ACTION[action], purpose, res)) for d in counting
    }
    if "deny" not in sayings and "permit" in sayings:
        return True
    emergency = caller.break_glass_reason and caller.break_glass_until and caller.break_glass_until > NOW
    return bool(emergency) and action in (Action.READ, Action.SEARCH, Action.CREATE, Action.UPDATE)


@pytest.mark.req("AC-12")
@pytest.mark.req("AC-01")
@pytest.mark.req("AC-10")
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    caller=st.sampled_from(sorted(CALLERS)),
    action=st.sampled_from([Action.READ, Action.SEARCH, Action.EXPORT, Action.CREATE, Action.UPDATE, Action.DELETE]),
    resource=resources(),
    docs=st.lists(st.integers(0, 99), min_size=1, max_size=3, unique=True).flatmap(
        lambda ids: st.tuples(*[consents(i) for i in ids])
    ),
    team=care(),
    guardian_verified=st.booleans(),
)
def test_engine_never_permits_what_the_brute_force_reading_denies(
    caller: str,
    action: Action,
    resource: dict[str, Any],
    docs: tuple[dict[str, Any], ...],
    team: list[dict[str, Any]],
    guardian_verified: bool,
) -> None:
    context = CALLERS[caller]
    facts = PatientFacts(
        "7",
        consents=tuple(docs),
        care_relationships=tuple(team),
        representatives=(representative("7", "r1", verified=guardian_verified),),
    )
    engine = POLICY.can_see(context, action, resource, [facts]).allowed
    expected = oracle(context, action, resource, list(docs), team, guardian_verified)
    event(f"{caller}: {'allowed' if engine else 'denied'}")
    assert not (engine and not expected), "engine permits what the rules deny"
    assert engine == expected, "engine denies what the rules permit"
