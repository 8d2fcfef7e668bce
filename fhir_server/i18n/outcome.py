"""An OperationOutcome in the caller's language (issue 13 §6; docs/languages.md).

A keyed issue (its diagnostics a :class:`Message`) gets its text in the chosen language twice:
``details.text``, the text R4 operationoutcome.html defines for display to the user, and
``diagnostics``, where FHIR clients commonly look. ``severity``, ``code`` and ``expression`` are
never translated: they are what programs read. Issues without a key (the structural and profile
validators' findings, which quote element names and HL7 texts) stay as they are, in English.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhir_server.i18n.catalogue import DEFAULT, Language, Message, msg
from fhir_server.validation.issues import Issue

ALL_OK = msg("outcome.all_ok")


def _entry(issue: Issue, lang: Language) -> tuple[dict[str, Any], bool]:
    out = issue.to_fhir()
    if not isinstance(issue.diagnostics, Message):
        return out, False
    text = issue.diagnostics.localised(lang)
    entry: dict[str, Any] = {"severity": out["severity"], "code": out["code"], "details": {"text": text},
                             "diagnostics": text}
    if "expression" in out:
        entry["expression"] = out["expression"]
    return entry, True


def localised_outcome(issues: Iterable[Issue], lang: Language) -> tuple[dict[str, Any], Language]:
    """The OperationOutcome of ``issues`` in ``lang``, and the language it is in (for
    ``Content-Language``): ``lang`` when any issue could be rendered in it, else English."""
    entries: list[dict[str, Any]] = []
    translated = False
    for issue in issues:
        entry, keyed = _entry(issue, lang)
        entries.append(entry)
        translated = translated or keyed
    if not entries:
        entry, translated = _entry(Issue("information", "informational", ALL_OK), lang)
        entries.append(entry)
    return {"resourceType": "OperationOutcome", "issue": entries}, lang if translated else DEFAULT


def language_headers(lang: Language) -> dict[str, str]:
    """``Content-Language`` (RFC 9110 §8.5) and ``Vary`` (§12.5.5) of an answer whose text was chosen by
    ``Accept-Language``."""
    return {"Content-Language": lang, "Vary": "Accept-Language"}
