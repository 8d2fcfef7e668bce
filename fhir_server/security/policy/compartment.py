"""When a resource's data happened, for ``Consent.provision.dataPeriod`` — read from the search index.

Which patients a resource belongs to is not decided here: that is the one compartment computation of
search/compartments.py, stored with every version. The clinical date is the first of the type's date
search parameters in ``CLINICAL_DATE_CODES`` (R4 ``clinical-date`` such as ``Observation.effective``,
then ``Condition.onset``/``recordedDate``, ``authoredOn``, ``issued``, ``created`` ...) that has a value,
as the indexer extracted it (the same expressions and the same date parser as search), else
``meta.lastUpdated``.
"""

from __future__ import annotations

from typing import Any

from fhir_server.security.fhirtime import first_instant

#: Date search parameters that say when a resource's data happened, most clinical first. The
#: expressions come from the core package; R4's ``clinical-date`` ("date") misses e.g. Condition.
CLINICAL_DATE_CODES = ("date", "onset-date", "recorded-date", "occurrence", "authored", "issued", "created", "period")
_CODES = frozenset(CLINICAL_DATE_CODES)


def clinical_instant(resource: dict[str, Any]) -> float | None:
    """When the resource's data happened (start of its clinical date), else its lastUpdated."""
    from fhir_server.search.indexer import get_indexer

    try:
        dates = get_indexer().dates(resource, _CODES) if resource.get("resourceType") else ()
    except (KeyError, TypeError, ValueError):
        dates = ()
    lows = {param: low for param, grp, low, _high in reversed(dates) if grp == 0}
    for code in CLINICAL_DATE_CODES:
        if code in lows:
            return lows[code] / 1e6
    meta = resource.get("meta")
    return first_instant(meta.get("lastUpdated")) if isinstance(meta, dict) else None
