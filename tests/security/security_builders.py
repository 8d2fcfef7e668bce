"""Small builders for the security tests: contexts, Consents, care relationships, resources."""

from __future__ import annotations

from typing import Any

from fhir_server.security.context import RequestContext
from fhir_server.security.policy import REPRESENTATIVE_AUTHORITY_URL
from fhir_server.security.refs import BIN_SYSTEM

NOW = 1_750_000_000.0  # 2025-06-15T15:06:40Z, the policy clock in these tests
PRIVACY = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]}
ORG_BIN = "940140000385"


def ctx(role: str, fhir_user: str | None = None, **kwargs: Any) -> RequestContext:
    """An authenticated context with broad scopes unless told otherwise."""
    kwargs.setdefault("scopes", ("user/*.cruds", "system/*.cruds"))
    return RequestContext(role=role, fhir_user=fhir_user, authenticated=True, subject=fhir_user or role, **kwargs)


def actor(reference: str | None = None, *, bin_value: str | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {}
    if reference:
        ref["reference"] = reference
    if bin_value:
        ref["identifier"] = {"system": BIN_SYSTEM, "value": bin_value}
    return {"role": {"coding": [{"code": "PRCP"}]}, "reference": ref}


def coding_list(system: str, *codes: str) -> list[dict[str, Any]]:
    return [{"system": system, "code": code} for code in codes]


def classes(*types: str) -> list[dict[str, Any]]:
    return coding_list("http://hl7.org/fhir/resource-types", *types)


def provision(kind: str | None = None, *children: dict[str, Any], **conditions: Any) -> dict[str, Any]:
    node: dict[str, Any] = dict(conditions)
    if kind:
        node["type"] = kind
    if children:
        node["provision"] = list(children)
    return node


def consent(
    patient_id: str,
    root: dict[str, Any] | None,
    *,
    cid: str = "c1",
    status: str = "active",
    policy_rule: str = "OPTIN",
    performer: list[str] | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": cid,
        "status": status,
        "scope": PRIVACY,
        "patient": {"reference": f"Patient/{patient_id}"},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": policy_rule}]},
    }
    if root is not None:
        resource["provision"] = root
    if performer:
        resource["performer"] = [{"reference": ref} for ref in performer]
    return resource


def grant(patient_id: str, who: str, *types: str, cid: str = "c1", **conditions: Any) -> dict[str, Any]:
    """An active consent permitting ``who`` (a reference) the given resource types (all if none)."""
    nested: dict[str, Any] = {"actor": [actor(who)], **conditions}
    if types:
        nested["class"] = classes(*types)
    return consent(patient_id, provision(None, provision("permit", **nested)), cid=cid)


def observation(patient_id: str, oid: str = "o1", **extra: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": "2025-05-01T10:00:00Z",
    }
    resource.update(extra)
    return resource


def condition(patient_id: str, cid: str = "cond1") -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": cid,
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "recordedDate": "2025-01-10",
    }


def care_team(patient_id: str, member: str, tid: str = "team1", **extra: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "CareTeam",
        "id": tid,
        "status": "active",
        "subject": {"reference": f"Patient/{patient_id}"},
        "participant": [{"member": {"reference": member}}],
    }
    resource.update(extra)
    return resource


def representative(patient_id: str, rid: str, *, verified: bool = True, **extra: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "RelatedPerson",
        "id": rid,
        "active": True,
        "patient": {"reference": f"Patient/{patient_id}"},
        "extension": [
            {
                "url": REPRESENTATIVE_AUTHORITY_URL,
                "extension": [
                    {"url": "basis", "valueCoding": {"code": "guardian"}},
                    {"url": "verified", "valueBoolean": verified},
                    {"url": "period", "valuePeriod": {"start": "2024-01-01"}},
                ],
            }
        ],
    }
    resource.update(extra)
    return resource
