"""Search: the parameter registry, index extraction, query parsing and the backend-neutral query model.

Backends (``storage/sqlite/search``; later MongoDB) plan a ``SearchQuery`` into their own query
language over the rows ``Indexer.extract`` produces. Nothing in this package knows SQL.
"""

from fhir_server.search.capability import UnsupportedParam, capability_search_params, unsupported_params
from fhir_server.search.compartments import Compartments, get_compartments
from fhir_server.search.cursor import decode_cursor, encode_cursor
from fhir_server.search.errors import SearchError
from fhir_server.search.indexer import Indexer, get_indexer
from fhir_server.search.parse import parse_search
from fhir_server.search.query import (
    ChainClause,
    Clause,
    Cursor,
    HasClause,
    IncludeSpec,
    ParamClause,
    SearchMatch,
    SearchQuery,
    SearchResult,
    SortKey,
)
from fhir_server.search.registry import Registry, SearchParamDef, build_registry, get_registry
from fhir_server.search.rows import IndexRows

__all__ = [
    "ChainClause",
    "Clause",
    "Compartments",
    "Cursor",
    "HasClause",
    "IncludeSpec",
    "IndexRows",
    "Indexer",
    "ParamClause",
    "Registry",
    "SearchError",
    "SearchMatch",
    "SearchParamDef",
    "SearchQuery",
    "SearchResult",
    "SortKey",
    "UnsupportedParam",
    "build_registry",
    "capability_search_params",
    "decode_cursor",
    "encode_cursor",
    "get_compartments",
    "get_indexer",
    "get_registry",
    "parse_search",
    "unsupported_params",
]
