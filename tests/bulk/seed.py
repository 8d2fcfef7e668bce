"""Small data sets for the export tests: three patients with an IIN each, their clinical data, a
practitioner (directory data), an observation that belongs to nobody, and a group."""

from __future__ import annotations

from typing import Any

from tests.bulk.conftest import IIN_SYSTEM

IINS = {"p1": "850315300019", "p2": "900101400028", "p3": "751224300036"}


def patient(pid: str, family: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1985-03-15",
            "identifier": [{"system": IIN_SYSTEM, "value": IINS[pid]}],
            "name": [{"family": family, "given": ["Айгуль"]}],
            "telecom": [{"system": "phone", "value": "+77010000000"}]}


def observation(oid: str, pid: str | None, value: str = "72.50") -> dict[str, Any]:
    heart_rate = {"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}
    res: dict[str, Any] = {"resourceType": "Observation", "id": oid, "status": "final",
                           "code": {"coding": [heart_rate]},
                           "effectiveDateTime": "2025-05-01T10:00:00+05:00",
                           "valueQuantity": {"value": float(value), "unit": "/min"},
                           "performer": [{"reference": "Practitioner/dr1", "display": "Иванов И."}]}
    if pid is not None:
        res["subject"] = {"reference": f"Patient/{pid}", "display": "patient"}
    return res


def condition(cid: str, pid: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}]},
            "recordedDate": "2025-05-01", "note": [{"text": "lives at Abay 10, Almaty"}]}


def group(gid: str, members: list[tuple[str, bool]]) -> dict[str, Any]:
    return {"resourceType": "Group", "id": gid, "type": "person", "actual": True,
            "member": [{"entity": {"reference": f"Patient/{pid}"}, "inactive": inactive} for pid, inactive in members]}


def clinic() -> list[dict[str, Any]]:
    return [
        patient("p1", "Ахметова"), patient("p2", "Садыкова"), patient("p3", "Жумабаева"),
        {"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Иванов"}]},
        observation("o1", "p1"), observation("o2", "p1", "80"), observation("o3", "p2"), observation("o4", "p3"),
        observation("o-orphan", None),
        condition("c1", "p1"), condition("c2", "p2"),
    ]
