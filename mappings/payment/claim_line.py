"""The claim line for the payment system (ФСМС: ГОБМП / ОСМС), its JSON form and its CSV registry row.

The fund's registry (счёт-реестр) layout is not public (kz-domain.md §4 [NV]); this is the proposed
minimal claim line of kz-domain.md §4 [P], one line per remote service. ``COLUMNS`` is the column order of
the CSV file and the key order of the JSON object (docs/mappings.md "Claim line columns").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class ClaimLine:
    line_id: str  # urn:uuid derived from record_id: the same service always gives the same line id
    record_id: str  # the kzfhir record id, also the NEHP message's recordId
    encounter: str  # the Encounter reference on the sending server
    provider_bin: str
    mo_code: str | None
    patient_iin: str
    funding_source: str  # kz-funding-source code: gobmp | osms | paid | vhi | other
    osms_insured: bool | None  # None: not known from the input
    service_code: str
    service_name: str | None
    icd10_main: str
    icd10_concomitant: tuple[str, ...]
    icd10_complication: tuple[str, ...]
    service_start: str  # FHIR dateTime as sent
    service_end: str | None
    form_of_care: str  # kz-form-of-care code: remote | ambulatory | inpatient | day-care
    remote_service_form: str | None  # kz-remote-service-form code
    practitioner_iin: str
    practitioner_specialty_code: str | None
    practitioner_specialty: str | None
    quantity: int
    unit_tariff_kzt: Decimal | None
    amount_kzt: Decimal | None
    referral_id: str | None
    nehp_record_id: str | None  # id the NEHP assigned, when known


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ClaimLine))
_TUPLES = frozenset({"icd10_concomitant", "icd10_complication"})
_MONEY = frozenset({"unit_tariff_kzt", "amount_kzt"})
_LIST_SEPARATOR = ","  # inside one CSV cell; ICD-10 codes never contain it


def to_json(line: ClaimLine) -> dict[str, Any]:
    """A JSON object in column order; money as decimal strings (no binary rounding), None omitted."""
    out: dict[str, Any] = {}
    for name in COLUMNS:
        value = getattr(line, name)
        if value is None:
            continue
        if name in _TUPLES:
            value = list(value)
        elif name in _MONEY:
            value = str(value)
        out[name] = value
    return out


def from_json(obj: dict[str, Any]) -> ClaimLine:
    values: dict[str, Any] = {name: obj.get(name) for name in COLUMNS}
    for name in _TUPLES:
        values[name] = tuple(values[name] or ())
    for name in _MONEY:
        values[name] = Decimal(values[name]) if values[name] is not None else None
    return ClaimLine(**values)


def _cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name in _TUPLES:
        return _LIST_SEPARATOR.join(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _value(name: str, cell: str) -> Any:
    if name in _TUPLES:
        return tuple(cell.split(_LIST_SEPARATOR)) if cell else ()
    if cell == "":
        return None
    if name == "osms_insured":
        return cell == "1"
    if name == "quantity":
        return int(cell)
    if name in _MONEY:
        return Decimal(cell)
    return cell


def to_csv(lines: Iterable[ClaimLine], *, delimiter: str = ";") -> str:
    """RFC 4180 CSV with a header row of ``COLUMNS``; ``;`` by default, as spreadsheets in ru/kk locales expect."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for line in lines:
        writer.writerow([_cell(name, getattr(line, name)) for name in COLUMNS])
    return buffer.getvalue()


def from_csv(text: str, *, delimiter: str = ";") -> list[ClaimLine]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if header is None or tuple(header) != COLUMNS:
        raise ValueError(f"the header row must be {delimiter.join(COLUMNS)}")
    return [ClaimLine(**{name: _value(name, cell) for name, cell in zip(COLUMNS, row, strict=True)})
            for row in reader]
