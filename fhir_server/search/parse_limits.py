"""Bounds on one search request, checked while it is parsed (issue 12; docs/limits.md).

Each bound is a setting (``search_max_*`` in ``config.py``). They keep a query well inside what the
store can plan — SQLite's expression depth (1000), result columns (2000), LIKE pattern length
(50,000 bytes) and bound variables; PostgreSQL's 65,535 bind parameters — so an oversized request is
a 400 naming the parameter (issue code ``too-costly``), never a storage error. FHIR R4 search
§3.1.1 lets a server refuse searches it considers too costly.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server.config import Settings
from fhir_server.search.errors import SearchError


@dataclass(frozen=True, slots=True)
class SearchLimits:
    max_params: int = 50  # name=value pairs in one query string (criteria and result controls)
    max_values: int = 100  # comma-separated (OR-ed) values of one parameter
    max_value_length: int = 2048  # characters of one parameter name or value
    max_sort_keys: int = 8  # entries of _sort
    max_chain_depth: int = 4  # levels of chaining and _has in one parameter name
    max_included: int = 1000  # _include/_revinclude resources added to one page (a warning says so)


LIMITS = SearchLimits()


def configure_limits(settings: Settings) -> None:
    """The limits from the settings, set once at start-up (as ``configure_paging``)."""
    global LIMITS
    LIMITS = SearchLimits(settings.search_max_params, settings.search_max_values, settings.search_max_value_length,
                          settings.search_max_sort_keys, settings.search_max_chain_depth, settings.search_max_included)


def too_costly(param: str, message: str) -> SearchError:
    return SearchError(param, message, code="too-costly")


def check_request(params: list[tuple[str, str]]) -> None:
    """The bounds that need no parsing: how many parameters, how long each name and value, how deep
    each chain, how many comma-separated values."""
    given = [(n, v) for n, v in params if v != ""]
    if len(given) > LIMITS.max_params:
        raise too_costly(given[LIMITS.max_params][0][:100],
                         f"a search takes at most {LIMITS.max_params} parameters; this one has {len(given)} "
                         "(setting search_max_params)")
    for name, value in given:
        shown = name[:100]
        if len(name) > LIMITS.max_value_length or len(value) > LIMITS.max_value_length:
            raise too_costly(shown, f"names and values are limited to {LIMITS.max_value_length} characters "
                             "(setting search_max_value_length)")
        if name.count(".") + name.count("_has:") > LIMITS.max_chain_depth:
            raise too_costly(shown, f"chains and _has nest at most {LIMITS.max_chain_depth} levels "
                             "(setting search_max_chain_depth)")
        if value.count(",") >= LIMITS.max_values and value.count(",") - value.count("\\,") >= LIMITS.max_values:
            raise too_costly(shown, f"a parameter takes at most {LIMITS.max_values} comma-separated values "
                             "(setting search_max_values)")


def check_sort(count: int) -> None:
    if count > LIMITS.max_sort_keys:
        raise too_costly("_sort", f"_sort takes at most {LIMITS.max_sort_keys} keys; this one has {count} "
                         "(setting search_max_sort_keys)")
