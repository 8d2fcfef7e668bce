"""The shipped Kazakhstan sample dataset (``data/``, written by ``build.py``), moved to the current week."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from fhir_server.demo.build import ANCHOR

DATA = Path(__file__).parent / "data"
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(.*)$")
_FIXED = frozenset({"birthDate"})  # a birth date is the IIN's first six digits: never moved


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """One patient's transaction Bundle, split the way the secure default needs it loaded."""

    patient: dict[str, Any]
    consent: dict[str, Any]
    rest: list[dict[str, Any]]  # every other entry of the Bundle, the Patient first

    @property
    def reference(self) -> str:
        return f"Patient/{self.patient['id']}"

    @property
    def name(self) -> str:
        name = self.patient["name"][0]
        return f"{name['family']} {' '.join(name['given'])}"


def weeks_to(today: date) -> int:
    """Whole weeks from the anchor to the Monday of ``today``'s week (weekdays stay what they were)."""
    monday = today - timedelta(days=today.weekday())
    return (monday - ANCHOR).days // 7


def shift(node: Any, weeks: int, key: str | None = None) -> Any:
    """A copy of ``node`` with every date and dateTime moved by ``weeks`` (birth dates excepted)."""
    if isinstance(node, dict):
        return {k: shift(v, weeks, k) for k, v in node.items()}
    if isinstance(node, list):
        return [shift(v, weeks, key) for v in node]
    if isinstance(node, str) and key not in _FIXED and (match := _DATE.match(node)):
        try:
            day = datetime.strptime(match.group(1), "%Y-%m-%d").date()
        except ValueError:
            return node
        return f"{day + timedelta(weeks=weeks)}{match.group(2)}"
    return node


def _read(name: str, weeks: int) -> dict[str, Any]:
    content: dict[str, Any] = shift(json.loads((DATA / name).read_text(encoding="utf-8")), weeks)
    return content


def directory(weeks: int) -> dict[str, Any]:
    """The transaction Bundle of organisations, practitioners, locations, schedules and slots."""
    return _read("directory.json", weeks)


def patients(weeks: int) -> list[PatientRecord]:
    out = []
    for path in sorted(DATA.glob("demo-patient-*.json")):
        entries = _read(path.name, weeks)["entry"]
        patient = next(e["resource"] for e in entries if e["resource"]["resourceType"] == "Patient")
        consent = next(e["resource"] for e in entries if e["resource"]["resourceType"] == "Consent")
        rest = [e for e in entries if e["resource"]["resourceType"] != "Consent"]
        out.append(PatientRecord(patient, consent, rest))
    return out
