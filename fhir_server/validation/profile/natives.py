"""Python implementations of the invariants evaluated on almost every element.

fhirpathpy costs 10-40 µs per evaluation; ``ele-1`` alone applies to every element and ``dom-*`` to every
resource, so evaluating them through the FHIRPath engine would exceed the 1 ms budget. Each native is
registered under its constraint key **and the exact expression text** it implements: if a profile or a
future package changes the expression, the FHIRPath engine evaluates it instead. The equivalence of each
native with its expression is checked by tests/profiles/test_natives.py against fhirpathpy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lxml import etree

from fhir_server.validation.profile.comparisons import compare_datetimes, compare_quantities
from profiles.identifiers import validate_bin, validate_iin

__all__ = ["NATIVES", "Env", "html_checks_ok", "html_has_content"]

_XHTML = "{http://www.w3.org/1999/xhtml}"
# R4 §2.4.0.2 Narrative: "basic html formatting elements"; no scripts, forms or active content.
_ALLOWED_TAGS = frozenset((
    "a", "abbr", "acronym", "b", "big", "blockquote", "br", "caption", "cite", "code", "col", "colgroup", "dd",
    "dfn", "div", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre",
    "q", "samp", "small", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr",
    "tt", "ul", "var",
))


@dataclass(frozen=True, slots=True)
class Env:
    """What an invariant may refer to besides its focus: %resource, %rootResource, the IIN mode."""

    resource: dict[str, Any]
    root: dict[str, Any]
    relaxed_iin: bool = False


Native = Callable[[Any, Env], bool]


def _ele_1(focus: Any, env: Env) -> bool:
    if isinstance(focus, dict):
        return any(key != "id" for key in focus)
    return focus is not None


def _ext_1(focus: Any, env: Env) -> bool:
    has_value = any(key.startswith("value") for key in focus)
    return bool(focus.get("extension")) != has_value


def _contained(focus: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in focus.get("contained", []) if isinstance(c, dict)]


def _dom_2(focus: Any, env: Env) -> bool:
    return not any(c.get("contained") for c in _contained(focus))


def _dom_3(focus: Any, env: Env) -> bool:
    """Every contained resource is referenced from the resource or references it back ('#').

    ``%resource.descendants().reference | .as(canonical) | .as(uri) | .as(url)`` covers every string that
    can hold a local reference, so any descendant string equal to ``#id`` counts (R4 §2.37 Contained).
    """
    contained = _contained(focus)
    if not contained:
        return True
    referenced = _local_refs(env.resource)
    return all("#" + str(c.get("id")) in referenced or "#" in _local_refs(c) for c in contained)


def _local_refs(node: Any) -> set[str]:
    """Every descendant string starting with ``#``, walked with a stack: nested generators cost a
    Synthea ExplanationOfBenefit about 3 ms here."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and item.startswith("#"):
            found.add(item)
    return found


def _dom_4(focus: Any, env: Env) -> bool:
    metas = [c.get("meta", {}) for c in _contained(focus)]
    return not any("versionId" in m or "lastUpdated" in m for m in metas)


def _dom_5(focus: Any, env: Env) -> bool:
    return not any(c.get("meta", {}).get("security") for c in _contained(focus))


def _dom_6(focus: Any, env: Env) -> bool:
    return "div" in focus.get("text", {})


def _parse_xhtml(div: Any) -> Any:
    if not isinstance(div, str):
        return None
    try:
        return etree.fromstring(div.encode("utf-8"), etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return None


def html_checks_ok(div: Any) -> bool:
    """txt-1: an XHTML ``div`` with only basic formatting elements and no active content attributes."""
    root = _parse_xhtml(div)
    if root is None or root.tag != _XHTML + "div":
        return False
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue  # comments and processing instructions carry no markup
        if not element.tag.startswith(_XHTML) or element.tag[len(_XHTML):] not in _ALLOWED_TAGS:
            return False
        if any(str(name).lower().startswith("on") for name in element.attrib):
            return False
    return True


def html_has_content(div: Any) -> bool:
    """txt-2: the narrative has some non-whitespace text or an image."""
    root = _parse_xhtml(div)
    if root is None:
        return False
    text = "".join(root.itertext()).strip()
    return bool(text) or root.find(f".//{_XHTML}img") is not None


def _txt_1(focus: Any, env: Env) -> bool:
    return html_checks_ok(focus)


def _txt_2(focus: Any, env: Env) -> bool:
    return html_has_content(focus)


def _ref_1(focus: Any, env: Env) -> bool:
    """A local reference must resolve to a contained resource; a bare '#' means the container itself."""
    reference = focus.get("reference")
    if not isinstance(reference, str) or not reference.startswith("#") or reference == "#":
        return True
    return reference[1:] in {c.get("id") for c in _contained(env.root)}


def _absent_or(key: str, needed: str) -> Native:
    def check(focus: Any, env: Env) -> bool:
        return key not in focus or needed in focus

    return check


def _sqty_1(focus: Any, env: Env) -> bool:
    return "comparator" not in focus


def _identifier_check(kind: str) -> Native:
    validate = validate_iin if kind == "iin" else validate_bin

    def check(focus: Any, env: Env) -> bool:
        value = focus.get("value")
        if not isinstance(value, str) or len(value) != 12 or not (value.isascii() and value.isdigit()):
            return True  # the format rule (kz-iin-1 / kz-bin-1) reports this case
        return not validate(value, relaxed=env.relaxed_iin)

    return check


def _twelve_digits(focus: Any, env: Env) -> bool:
    value = focus.get("value")
    return value is None or (isinstance(value, str) and len(value) == 12 and value.isascii() and value.isdigit())


def _per_1(focus: Any, env: Env) -> bool:
    """start <= end, with FHIRPath's precision rule: equal up to the shorter value → unknown → violated."""
    start, end = focus.get("start"), focus.get("end")
    if start is None or end is None:
        return True
    return compare_datetimes(start, end) in (-1, 0)


def _rng_2(focus: Any, env: Env) -> bool:
    """low <= high as Quantities (fhirpathpy cannot compare them); incomparable units → violated."""
    low, high = focus.get("low"), focus.get("high")
    if low is None or high is None:
        return True
    return compare_quantities(low, high) in (-1, 0)


def _has_value_key(focus: dict[str, Any]) -> bool:
    return any(key.startswith("value") and key[5:6].isupper() for key in focus)


def _inv_1_parameters(focus: Any, env: Env) -> bool:
    """A parameter (or part) has exactly one of value[x], resource, part (the choice ``value`` resolved by
    its JSON names, which fhirpathpy misses inside ``part``)."""
    part, value, resource = bool(focus.get("part")), _has_value_key(focus), "resource" in focus
    return (part and not value and not resource) or (not part and value != resource)


_TIMING_EVENTS = frozenset({"C", "CM", "CD", "CV"})


def _tim_9(focus: Any, env: Env) -> bool:
    """An offset needs a ``when`` that is not a meal (C, CM, CD, CV); ``when`` repeats, so every code counts
    (fhirpathpy refuses ``in`` with a collection)."""
    if "offset" not in focus:
        return True
    when = focus.get("when")
    codes = when if isinstance(when, list) else [when] if when is not None else []
    return bool(codes) and not _TIMING_EVENTS.intersection(c for c in codes if isinstance(c, str))


_HTML = "htmlChecks()"
_TWELVE = "value.empty() or value.matches('^[0-9]{12}$')"

NATIVES: dict[tuple[str, str], Native] = {
    ("ele-1", "hasValue() or (children().count() > id.count())"): _ele_1,
    ("ext-1", "extension.exists() != value.exists()"): _ext_1,
    ("dom-2", "contained.contained.empty()"): _dom_2,
    (
        "dom-3",
        "contained.where((('#'+id in (%resource.descendants().reference | %resource.descendants().as(canonical) | "
        "%resource.descendants().as(uri) | %resource.descendants().as(url))) or descendants().where(reference = "
        "'#').exists() or descendants().where(as(canonical) = '#').exists() or descendants().where(as(canonical) "
        "= '#').exists()).not()).trace('unmatched', id).empty()",
    ): _dom_3,
    ("dom-4", "contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()"): _dom_4,
    ("dom-5", "contained.meta.security.empty()"): _dom_5,
    ("dom-6", "text.`div`.exists()"): _dom_6,
    ("txt-1", _HTML): _txt_1,
    ("txt-2", _HTML): _txt_2,
    (
        "ref-1",
        "reference.startsWith('#').not() or (reference.substring(1).trace('url') in "
        "%rootResource.contained.id.trace('ids'))",
    ): _ref_1,
    ("cpt-2", "value.empty() or system.exists()"): _absent_or("value", "system"),
    ("qty-3", "code.empty() or system.exists()"): _absent_or("code", "system"),
    ("sqty-1", "comparator.empty()"): _sqty_1,
    ("per-1", "start.hasValue().not() or end.hasValue().not() or (start <= end)"): _per_1,
    ("rng-2", "low.empty() or high.empty() or (low <= high)"): _rng_2,
    (
        "inv-1",
        "(part.exists() and value.empty() and resource.empty()) or (part.empty() and (value.exists() xor "
        "resource.exists()))",
    ): _inv_1_parameters,
    ("tim-9", "offset.empty() or (when.exists() and ((when in ('C' | 'CM' | 'CD' | 'CV')).not()))"): _tim_9,
    ("kz-iin-1", _TWELVE): _twelve_digits,
    ("kz-iin-2", "value.empty() or value.matches('^[0-9]{12}$').not() or value.kzIinValid()"): _identifier_check(
        "iin"
    ),
    ("kz-bin-1", _TWELVE): _twelve_digits,
    ("kz-bin-2", "value.empty() or value.matches('^[0-9]{12}$').not() or value.kzBinValid()"): _identifier_check(
        "bin"
    ),
}
