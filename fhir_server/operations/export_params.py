"""Kick-off parameters of the Bulk Data ``$export`` operation (FHIR Bulk Data Access IG v2,
"Bulk Data Kick-off Request": headers and query/Parameters inputs) -> :class:`ExportRequest`.

Unsupported parameters (``_typeFilter``, ``_elements``, ``includeAssociatedData`` ...) are refused with
400 as the IG asks, unless the client sent ``Prefer: handling=lenient``: then they are ignored and
named in the manifest's error file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fhir_server.errors import FhirError
from fhir_server.search.compartments import get_compartments
from fhir_server.search.parse_values import parse_date
from fhir_server.security.refs import ref_id, ref_type, relative_ref

#: IG v2 "_outputFormat": the server must accept these three spellings of NDJSON.
OUTPUT_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
_SUPPORTED = frozenset({"_outputFormat", "_since", "_type", "patient", "_deidentify"})
SYSTEM, PATIENT, GROUP = "system", "patient", "group"


@dataclass(frozen=True, slots=True)
class Prefer:
    """The ``Prefer`` header of a kick-off: ``respond-async`` is required, ``handling`` optional."""

    respond_async: bool = False
    lenient: bool = False

    @classmethod
    def parse(cls, header: str | None) -> Prefer:
        tokens = {part.strip().replace(" ", "").lower() for part in (header or "").split(",")}
        return cls("respond-async" in tokens, "handling=lenient" in tokens)


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export. ``types`` empty: every type the level covers; ``patients`` None: every patient
    of the level (all patients, or all members of the group)."""

    level: str  # system | patient | group
    group_id: str | None = None
    types: tuple[str, ...] = ()
    since: str | None = None
    patients: tuple[str, ...] | None = None
    deidentify: bool = False
    ignored: tuple[str, ...] = ()  # parameters ignored under Prefer: handling=lenient

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "group": self.group_id, "types": list(self.types), "since": self.since,
                "patients": None if self.patients is None else list(self.patients),
                "deidentify": self.deidentify, "ignored": list(self.ignored)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportRequest:
        patients = data.get("patients")
        return cls(data["level"], data.get("group"), tuple(data.get("types", ())), data.get("since"),
                   None if patients is None else tuple(patients), bool(data.get("deidentify")),
                   tuple(data.get("ignored", ())))


def parse_request(level: str, group_id: str | None, params: dict[str, list[Any]], prefer: Prefer,
                  is_type: Callable[[str], bool]) -> ExportRequest:
    """Check the kick-off and read its parameters; ``is_type(name) -> bool`` knows the resource types.
    Raises FhirError 400 for anything the IG says the server must refuse."""
    if not prefer.respond_async:
        raise FhirError("invalid", "a bulk export kick-off needs the header 'Prefer: respond-async' "
                        "(Bulk Data Access IG, kick-off request)", code="required", expression="Prefer")
    ignored = _unsupported(params, prefer)
    _output_format(params.get("_outputFormat", []))
    types = _types(params.get("_type", []), level, is_type)
    patients = _patients(params.get("patient", []), level)
    return ExportRequest(level, group_id, types, _since(params.get("_since", [])), patients,
                         _flag(params.get("_deidentify", [])), ignored)


def _unsupported(params: dict[str, list[Any]], prefer: Prefer) -> tuple[str, ...]:
    names = sorted(n for n in params if n not in _SUPPORTED)
    if names and not prefer.lenient:
        raise FhirError("invalid", f"parameter {names[0]!r} is not supported by this server's $export "
                        "(send 'Prefer: handling=lenient' to have unsupported parameters ignored)",
                        code="not-supported", expression=names[0])
    return tuple(names)


def _single(values: list[Any], name: str) -> Any:
    if len(values) > 1:
        raise FhirError("invalid", f"parameter {name!r} may be given once", code="invalid", expression=name)
    return values[0] if values else None


def _output_format(values: list[Any]) -> None:
    value = _single(values, "_outputFormat")
    if value is not None and str(value).strip() not in OUTPUT_FORMATS:
        raise FhirError("invalid", f"_outputFormat {value!r} is not supported; use application/fhir+ndjson",
                        code="not-supported", expression="_outputFormat")


def _types(values: list[Any], level: str, is_type: Callable[[str], bool]) -> tuple[str, ...]:
    names = [t.strip() for v in values for t in str(v).split(",") if t.strip()]
    in_compartment = set(get_compartments().types_in("Patient"))
    for name in names:
        if not is_type(name):
            raise FhirError("invalid", f"_type {name!r} is not a resource type", code="not-supported",
                            expression="_type")
        if level != SYSTEM and name not in in_compartment:
            # IG v2: patient-level exports return the Patient compartment (R4 CompartmentDefinition patient).
            raise FhirError("invalid", f"_type {name!r} is not in the Patient compartment; a {level}-level "
                            "export returns patients' data only", code="not-supported", expression="_type")
    return tuple(dict.fromkeys(names))


def _since(values: list[Any]) -> str | None:
    value = _single(values, "_since")
    if value is None:
        return None
    parse_date("_since", str(value))  # 400 naming _since when it is not a FHIR instant/dateTime
    return str(value)


def _patients(values: list[Any], level: str) -> tuple[str, ...] | None:
    if not values:
        return None
    if level == SYSTEM:
        raise FhirError("invalid", "parameter 'patient' applies to Patient and Group level exports only",
                        code="not-supported", expression="patient")
    ids: list[str] = []
    for value in values:
        raw = value.get("reference") if isinstance(value, dict) else value
        ref = relative_ref(raw) if isinstance(raw, str) else None
        pid = ref_id(ref) if ref is not None and ref_type(ref) == "Patient" else None
        if not pid:
            raise FhirError("invalid", f"patient {raw!r} is not a reference to a Patient", code="value",
                            expression="patient")
        ids.append(pid)
    return tuple(dict.fromkeys(ids))


def _flag(values: list[Any]) -> bool:
    value = _single(values, "_deidentify")
    if value is None or value is False or value == "false":
        return False
    if value is True or value == "true":
        return True
    raise FhirError("invalid", "_deidentify must be true or false", code="value", expression="_deidentify")
