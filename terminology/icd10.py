"""Import the full ICD-10 classification from a file, as a FHIR CodeSystem ``http://hl7.org/fhir/sid/icd-10``.

Two formats: the WHO ClaML XML distribution (``<Class code kind><SuperClass/><Rubric kind="preferred">``) and a
simple ``code;display;parent`` CSV. Register the result with ``TerminologyService.register`` to replace the
shipped fragment: ``service.register(load_full(path))``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from lxml import etree

from terminology._icd10_structure import ICD10_URL

_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_ABSTRACT_KINDS = ("chapter", "block")


def load_full(path: str | Path, *, version: str | None = None, language: str = "en") -> dict[str, Any]:
    """Read ClaML (``.xml``) or CSV and return a complete CodeSystem resource (content = complete).

    ``language`` is the language of CSV displays (ClaML labels carry ``xml:lang``); labels in a language other
    than English are also added as designations, so ``display_language`` lookups find them.
    """
    source = Path(path)
    head = source.read_bytes()[:512].lstrip()
    if source.suffix.lower() == ".xml" or head.startswith(b"<"):
        rows, title_version = _read_claml(source)
    else:
        rows, title_version = _read_csv(source, language), None
    return _code_system(rows, version or title_version)


# A row: (code, display, language of the display, parent code or None, kind or None)
_Row = tuple[str, str, str, str | None, str | None]


def _read_claml(path: Path) -> tuple[list[_Row], str | None]:
    # The classification is a local file, but never let XML pull in external entities or the network.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, remove_comments=True)
    root = etree.parse(str(path), parser).getroot()
    title = root.find("Title")
    rows: list[_Row] = []
    for cls in root.iter("Class"):
        code = cls.get("code")
        if not code:
            continue
        superclass = cls.find("SuperClass")
        label, lang = _preferred_label(cls)
        rows.append((code, label, lang, superclass.get("code") if superclass is not None else None, cls.get("kind")))
    return rows, title.get("version") if title is not None else None


def _preferred_label(cls: Any) -> tuple[str, str]:
    for rubric in cls.iter("Rubric"):
        if rubric.get("kind") == "preferred":
            label = rubric.find("Label")
            if label is not None:
                # Labels may contain <Reference>/<Fragment> markup; keep their text only.
                text = " ".join("".join(label.itertext()).split())
                return text, label.get(_XML_LANG, "en")
    return "", "en"


def _read_csv(path: Path, language: str) -> list[_Row]:
    rows: list[_Row] = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for record in csv.reader(handle, delimiter=";"):
            if not record or not record[0].strip() or record[0].strip().lower() == "code":
                continue
            code = record[0].strip()
            display = record[1].strip() if len(record) > 1 else ""
            parent = record[2].strip() if len(record) > 2 and record[2].strip() else None
            rows.append((code, display, language, parent, None))
    return rows


def _code_system(rows: list[_Row], version: str | None) -> dict[str, Any]:
    concepts: dict[str, dict[str, Any]] = {}
    for code, display, lang, _, kind in rows:
        concept: dict[str, Any] = {"code": code, "display": display}
        if lang.split("-")[0] != "en":
            concept["designation"] = [{"language": lang, "value": display}]
        properties: list[dict[str, Any]] = [{"code": "kind", "valueCode": kind}] if kind else []
        if kind in _ABSTRACT_KINDS:
            properties.append({"code": "notSelectable", "valueBoolean": True})
        if properties:
            concept["property"] = properties
        concepts[code] = concept
    roots: list[dict[str, Any]] = []
    for code, _, _, parent, _ in rows:
        holder = concepts.get(parent) if parent else None
        (holder.setdefault("concept", []) if holder is not None else roots).append(concepts[code])
    resource: dict[str, Any] = {
        "resourceType": "CodeSystem",
        "url": ICD10_URL,
        "name": "ICD10",
        "title": "ICD-10 (WHO)",
        "status": "active",
        "caseSensitive": True,
        "hierarchyMeaning": "is-a",
        "content": "complete",
        "count": len(concepts),
        "property": [
            {"code": "kind", "description": "ClaML class kind", "type": "code"},
            {"code": "notSelectable", "uri": "http://hl7.org/fhir/concept-properties#notSelectable", "type": "boolean"},
        ],
        "concept": roots,
    }
    if version:
        resource["version"] = version
    return resource
