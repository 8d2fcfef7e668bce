"""Enumerable code sets for the required bindings of the R4 core (base validation, issue 2 §5).

The codes come from the one ValueSet expansion (``expansion.evaluate``) over the R4 core package. Only value
sets whose content is fully held there are enumerated; for others (SNOMED CT, LOINC, fragments, unknown
imports) the structural validator cannot tell and stays silent (the terminology service decides in profile
validation).
"""

from __future__ import annotations

from functools import cache

from fhir_server.definitions.expansion import ExpansionError, core_source, evaluate


@cache
def required_codes(valueset_url: str) -> tuple[frozenset[str], frozenset[tuple[str, str]]] | None:
    """The codes (and system|code pairs) of a value set, or None when it cannot be enumerated."""
    source = core_source()
    vs = source.value_set(valueset_url)
    if vs is None:
        return None
    try:
        result = evaluate(source, vs)
    except ExpansionError:
        return None
    if not result.enumerated:
        return None
    pairs = result.pairs()
    return frozenset(code for _, code in pairs), pairs
