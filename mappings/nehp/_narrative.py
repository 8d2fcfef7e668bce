"""Human-readable lines of each MD-D item, for the section narratives of the FHIR document (R4 §2.23.0.1).

Every line is made of record values only; the words around them are Russian labels of the national forms.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from mappings.model import Coded, Concept, Person, Referral, RemoteServiceRecord

XHTML = "http://www.w3.org/1999/xhtml"


def _code(c: Coded | None) -> str:
    if c is None:
        return ""
    return f"{c.display} ({c.code})" if c.display else c.code


def _person(p: Person | None) -> list[str]:
    return [f"{p.full_name}, ИИН {p.iin}"] if p is not None else []


def _concept(c: Concept | None) -> str:
    return c.label if c is not None else ""


def _referral(r: Referral) -> str:
    parts = [_concept(r.kind), _concept(r.service), f"от {r.authored_on}" if r.authored_on else "",
             f"МКБ-10: {', '.join(r.reasons)}" if r.reasons else ""]
    return "; ".join(p for p in parts if p)


def _diagnoses(r: RemoteServiceRecord) -> list[str]:
    return ["; ".join(p for p in (_code(d.icd10), _code(d.kind), _code(d.type), _code(d.character)) if p)
            for d in r.diagnoses]


def _note(r: RemoteServiceRecord) -> list[str]:
    if r.note is None:
        return []
    lines = [r.note.text] if r.note.text else []
    for i in r.note.indicators:
        value = " ".join(str(x) for x in (i.value, i.unit) if x is not None)
        when = f" ({i.effective})" if i.effective else ""
        lines.append(f"{i.code.label}: {value}{when}" + (f"; {_concept(i.interpretation)}" if i.interpretation else ""))
    return lines


def _plan(r: RemoteServiceRecord) -> list[str]:
    if r.plan is None:
        return []
    lines = [r.plan.text] if r.plan.text else []
    return lines + ([f"Дата следующего осмотра: {r.plan.next_visit}"] if r.plan.next_visit else [])


def _practitioner(r: RemoteServiceRecord) -> list[str]:
    if r.practitioner is None:
        return []
    specialty = _concept(r.practitioner.specialty)
    return [line + (f", {specialty}" if specialty else "") for line in _person(r.practitioner.person)]


def _disability(r: RemoteServiceRecord) -> list[str]:
    lines = []
    for d in r.disability:
        parts = [_code(d.kind), _code(d.action), f"№ {d.number}" if d.number else "",
                 " – ".join(x for x in (d.start, d.end) if x)]
        lines.append("; ".join(p for p in parts if p))
    return lines


ITEM_LINES: dict[int, Callable[[RemoteServiceRecord], list[str]]] = {
    1: lambda r: [_code(r.form)] if r.form else [],
    2: lambda r: [_code(r.channel)] if r.channel else [],
    3: lambda r: _person(r.patient),
    4: lambda r: [_code(r.service)] if r.service else [],
    5: _practitioner,
    6: _diagnoses,
    7: _note,
    8: lambda r: [r.conclusion] if r.conclusion else [],
    9: _plan,
    10: lambda r: [_referral(x) for x in r.referrals],
    11: lambda r: ["; ".join(p for p in (x.medication.label, x.dosage or "") if p) for x in r.prescriptions],
    12: _disability,
    13: lambda r: [_referral(x) for x in r.mse_referrals],
}


def xhtml(lines: list[str]) -> str:
    """A Narrative ``div``: one paragraph per line, text escaped."""
    body = "".join(f"<p>{html.escape(line, quote=False)}</p>" for line in lines)
    return f'<div xmlns="{XHTML}">{body}</div>'
