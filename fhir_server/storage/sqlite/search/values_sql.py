"""SQL conditions for one search value against one index row (alias ``a``).

Prefix semantics are those of FHIR R4 search §3.1.1.4 (prefix table): the target's range ``[tl, th)``
is compared with the search value's implicit range ``[pl, ph)``; e.g. ``ge`` = "the range above the
search value intersects the target, or the search range fully contains the target".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from fhir_server.search import terminology
from fhir_server.search.dates import now_us
from fhir_server.search.errors import SearchError
from fhir_server.search.query import (
    DateValue,
    InValue,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    StringValue,
    TextValue,
    TokenValue,
    UriValue,
    Value,
)
from fhir_server.search.text import normalize
from fhir_server.storage.sqlite.search.dialect import SQLITE, Dialect

Sql = tuple[str, list[Any]]
Lookup = Callable[[str, str], dict[str, Any] | None]
TOP = "\U0010ffff"  # sorts after every string that starts with a given prefix


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def range_sql(prefix: str, low: str, high: str, pl: float, ph: float, ap_margin: float) -> Sql:
    """Half-open target ``[low, high)`` against the search range ``[pl, ph)``."""
    eq = (f"({low} >= ? AND {high} <= ?)", [pl, ph])
    if prefix == "eq":
        return eq
    if prefix == "ne":
        return f"NOT {eq[0]}", eq[1]
    if prefix == "gt":
        return f"{high} > ?", [ph]
    if prefix == "lt":
        return f"{low} < ?", [pl]
    if prefix == "ge":
        return f"({high} > ? OR {eq[0]})", [ph, *eq[1]]
    if prefix == "le":
        return f"({low} < ? OR {eq[0]})", [pl, *eq[1]]
    if prefix == "sa":
        return f"{low} >= ?", [ph]
    if prefix == "eb":
        return f"{high} <= ?", [pl]
    return f"({low} < ? AND {high} > ?)", [ph + ap_margin, pl - ap_margin]  # ap


def date_sql(v: DateValue, a: str) -> Sql:
    # ap: within 10% of the distance between the value and now (R4 §3.1.1.4.2 suggests this).
    margin = max(abs(now_us() - v.low) // 10, v.high - v.low)
    return range_sql(v.prefix, f"{a}.low", f"{a}.high", v.low, v.high, margin)


def number_sql(v: NumberValue, a: str) -> Sql:
    """Numbers are indexed as closed ``[low, high]`` (a point: low == high). ``eq``/``ne``/``ap`` use
    the search value's significant-figure range; the other prefixes compare with the exact value."""
    low, high, x = f"{a}.low", f"{a}.high", v.value
    if v.prefix in ("eq", "ne"):
        sql = f"({low} >= ? AND {high} < ?)"
        return (sql if v.prefix == "eq" else f"NOT {sql}"), [v.low, v.high]
    if v.prefix == "ap":
        margin = abs(x) / 10
        return f"({high} >= ? AND {low} <= ?)", [x - margin, x + margin]
    op = {"gt": (high, ">"), "lt": (low, "<"), "ge": (high, ">="), "le": (low, "<="),
          "sa": (low, ">"), "eb": (high, "<")}[v.prefix]
    return f"{op[0]} {op[1]} ?", [x]


def quantity_sql(v: QuantityValue, a: str) -> Sql:
    sql, args = number_sql(v.number, a)
    if v.system is not None and v.code is not None:
        return f"({sql} AND {a}.system = ? AND {a}.code = ?)", [*args, v.system, v.code]
    if v.code is not None:  # number||code: the code, or the human-readable unit (R4 §3.1.1.4.9)
        return f"({sql} AND ({a}.code = ? OR {a}.unit = ?))", [*args, v.code, v.code]
    if v.system is not None:
        return f"({sql} AND {a}.system = ?)", [*args, v.system]
    return sql, args


def token_sql(v: TokenValue, a: str, modifier: str | None, lookup: Lookup | None, dialect: Dialect = SQLITE) -> Sql:
    if modifier in ("above", "below") and v.code is not None:
        expand = terminology.above if modifier == "above" else terminology.below
        codes = sorted(expand(v.system, v.code, lookup))
        sql = f"{a}.code IN ({dialect.text_list})"
        if v.system is not None:
            return f"({sql} AND {a}.system = ?)", [orjson.dumps(codes).decode(), v.system]
        return sql, [orjson.dumps(codes).decode()]
    if v.code is None:
        return f"{a}.system = ?", [v.system]
    if v.any_system:
        return f"{a}.code = ?", [v.code]
    if v.system is None:
        return f"({a}.code = ? AND {a}.system IS NULL)", [v.code]
    return f"({a}.code = ? AND {a}.system = ?)", [v.code, v.system]


def in_sql(v: InValue, a: str, param: str, lookup: Lookup | None, dialect: Dialect = SQLITE) -> Sql:
    pairs = terminology.expand_valueset(v.valueset, lookup)
    if pairs is None:
        raise SearchError(param, f"value set '{v.valueset}' is unknown or cannot be expanded here")
    codes = orjson.dumps(sorted({c for _, c in pairs})).decode()
    joined = orjson.dumps(sorted(f"{s}|{c}" for s, c in pairs)).decode()
    return (
        f"({a}.code IN ({dialect.text_list}) AND ({a}.system || '|' || {a}.code) IN ({dialect.text_list}))",
        [codes, joined],
    )


def text_sql(v: TextValue, a: str) -> Sql:
    """:text — the text, or any word of it, starts with the value (case/accent-insensitive)."""
    norm = like_escape(normalize(v.text))
    return f"({a}.text LIKE ? ESCAPE '\\' OR {a}.text LIKE ? ESCAPE '\\')", [norm + "%", "% " + norm + "%"]


def string_sql(v: StringValue, a: str, modifier: str | None) -> Sql:
    if modifier == "exact":
        return f"{a}.exact = ?", [v.value]
    norm = normalize(v.value)
    if modifier == "contains":
        return f"{a}.norm LIKE ? ESCAPE '\\'", ["%" + like_escape(norm) + "%"]
    return f"({a}.norm >= ? AND {a}.norm < ?)", [norm, norm + TOP]  # starts with (R4 §3.1.1.4.8)


def uri_sql(v: UriValue, column: str, modifier: str | None, dialect: Dialect = SQLITE) -> Sql:
    if modifier == "below":
        return f"({column} >= ? AND {column} < ?)", [v.value, v.value + TOP]
    if modifier == "above":  # the stored URI is the value or one of its parent paths
        parts = v.value.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(3, len(parts) + 1)] or [v.value]
        return f"{column} IN ({dialect.text_list})", [orjson.dumps(prefixes).decode()]
    return f"{column} = ?", [v.value]


def reference_sql(v: ReferenceValue, a: str, dialect: Dialect = SQLITE) -> Sql:
    conds: list[str] = []
    args: list[Any] = []
    if v.ref_id is not None:
        conds.append(f"{a}.ref_id = ?")
        args.append(v.ref_id)
        if v.ref_type is not None:
            conds.append(f"{a}.ref_type = ?")
            args.append(v.ref_type)
    elif v.url is not None:
        conds.append(f"{a}.url = ?")
        args.append(v.url)
    if v.version is not None:
        conds.append(f"{a}.ref_version = ?")
        args.append(v.version)
    return "(" + " AND ".join(conds or [dialect.false]) + ")", args


def value_sql(ptype: str, modifier: str | None, value: Value, a: str, param: str, lookup: Lookup | None,
              dialect: Dialect = SQLITE) -> Sql:
    """The condition one OR-ed value puts on an index row of parameter type ``ptype``."""
    if isinstance(value, TextValue):
        return text_sql(value, a)
    if isinstance(value, InValue):
        return in_sql(value, a, param, lookup, dialect)
    if isinstance(value, TokenValue):
        return token_sql(value, a, modifier, lookup, dialect)
    if isinstance(value, StringValue):
        return string_sql(value, a, modifier)
    if isinstance(value, DateValue):
        return date_sql(value, a)
    if isinstance(value, NumberValue):
        return number_sql(value, a)
    if isinstance(value, QuantityValue):
        return quantity_sql(value, a)
    if isinstance(value, ReferenceValue):
        return reference_sql(value, a, dialect)
    if isinstance(value, UriValue):
        return uri_sql(value, f"{a}.url" if ptype == "reference" else f"{a}.value", modifier, dialect)
    raise SearchError(param, f"value {value!r} cannot be used here")
