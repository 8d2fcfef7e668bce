"""What the ICD-10 code structure tells about codes missing from a fragment of the classification.

A category ``K29`` or subcategory ``K29.8`` belongs under the category with its first three characters, or
else under the block whose range holds them (``K20-K31``). So a value set made of ICD-10 blocks can rule a
well-formed but unknown code in or out even though only a fragment of ICD-10 is held.
"""

from __future__ import annotations

import re

from fhir_server.definitions.codesystem import CodeSystemIndex

ICD10_URL = "http://hl7.org/fhir/sid/icd-10"
ICD10_CODE = re.compile(r"[A-Z][0-9]{2}(\.[0-9A-Z]{1,2})?")
_BLOCK = re.compile(r"([A-Z][0-9]{2})-([A-Z][0-9]{2})")


def icd10_anchor(cs: CodeSystemIndex, code: str) -> str | None:
    """The held concept an unknown ICD-10 code would sit under: its category, else its narrowest block."""
    if not ICD10_CODE.fullmatch(code):
        return None
    if "." in code and cs.get(code[:3]) is not None:
        return code[:3]
    stem = code[:3]
    best: tuple[int, str] | None = None
    for candidate in cs.concepts:
        match = _BLOCK.fullmatch(candidate)
        if match and match[1] <= stem <= match[2]:
            width = _span(match[1], match[2])
            if best is None or width < best[0]:
                best = (width, candidate)
    return best[1] if best else None


def _span(low: str, high: str) -> int:
    return (ord(high[0]) - ord(low[0])) * 100 + int(high[1:]) - int(low[1:])
