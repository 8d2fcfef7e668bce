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


# -- invariants of the resources bulk data carries (Synthea, MIS exports), evaluated natively because each costs
# 100-300 µs in fhirpathpy and runs once per instance: obs-6/obs-7 alone were a quarter of the invariant time of
# an import. FHIRPath's navigation finds an element by its value or by its ``_name`` twin (a primitive with only
# extensions exists), so both count as present here too.

def _present(focus: Any, key: str) -> bool:
    return isinstance(focus, dict) and (focus.get(key) is not None or focus.get("_" + key) is not None)


def _choice_present(focus: Any, prefix: str) -> bool:
    """A choice element ``prefix[x]`` in any of its types (``valueQuantity``, ``_valueString``)."""
    if not isinstance(focus, dict):
        return False
    size = len(prefix)
    for key in focus:
        name = key[1:] if key[:1] == "_" else key
        if name.startswith(prefix) and name[size:size + 1].isupper():
            return True
    return False


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _frozen(value: Any) -> Any:
    """A hashable image of a JSON value for FHIRPath equality of complex values (every property equal,
    order of object members irrelevant, order of list items significant)."""
    if isinstance(value, dict):
        return frozenset((k, _frozen(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return (type(value) is bool, value)


def _codings(concepts: Any) -> list[dict[str, Any]]:
    """``X.coding`` of one CodeableConcept or a list of them."""
    return [c for concept in _listed(concepts) if isinstance(concept, dict)
            for c in _listed(concept.get("coding")) if isinstance(c, dict)]


def _coded(concepts: Any, system: str, codes: frozenset[str]) -> bool:
    """``X.coding.where(system = S and code in codes).exists()``."""
    return any(c.get("system") == system and c.get("code") in codes for c in _codings(concepts))


def _obs_6(focus: Any, env: Env) -> bool:
    return not _present(focus, "dataAbsentReason") or not _choice_present(focus, "value")


def _obs_7(focus: Any, env: Env) -> bool:
    """A value, and no component with a code of the Observation's own code (coding equality is whole-value)."""
    if not _choice_present(focus, "value"):
        return True
    own = {_frozen(c) for c in _codings(env.resource.get("code") if isinstance(env.resource, dict) else None)}
    if not own:
        return True
    for component in _listed(focus.get("component")):
        if isinstance(component, dict) and any(_frozen(c) in own for c in _codings(component.get("code"))):
            return False
    return True


def _present_or(key: str, needed: str) -> Native:
    """``key.empty() or needed.exists()``."""
    def check(focus: Any, env: Env) -> bool:
        return not _present(focus, key) or _present(focus, needed)

    return check


def _not_both(first: str, second: str) -> Native:
    """``first.empty() or second.empty()``."""
    def check(focus: Any, env: Env) -> bool:
        return not (_present(focus, first) and _present(focus, second))

    return check


def _not_negative(key: str) -> Native:
    """``key.exists() implies key >= 0`` (a decimal; structure validation has checked its type)."""
    def check(focus: Any, env: Env) -> bool:
        if not _present(focus, key):
            return True
        value = focus.get(key)
        return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0

    return check


_CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
_ERROR = frozenset({"entered-in-error"})
_INACTIVE = frozenset({"resolved", "remission", "inactive"})


def _con_3(focus: Any, env: Env) -> bool:
    """``category.select($this = 'problem-list-item')`` compares a CodeableConcept with a string: false for
    every category, never empty, so the last clause holds only without a category."""
    return (_present(focus, "clinicalStatus") or _coded(focus.get("verificationStatus"), _CONDITION_VERIFICATION,
                                                        _ERROR) or not _present(focus, "category"))


def _con_4(focus: Any, env: Env) -> bool:
    return not _choice_present(focus, "abatement") or _coded(focus.get("clinicalStatus"), _CONDITION_CLINICAL,
                                                             _INACTIVE)


def _con_5(focus: Any, env: Env) -> bool:
    return not _coded(focus.get("verificationStatus"), _CONDITION_VERIFICATION, _ERROR) \
        or not _present(focus, "clinicalStatus")


def _ait_1(focus: Any, env: Env) -> bool:
    return _coded(focus.get("verificationStatus"), _ALLERGY_VERIFICATION, _ERROR) or _present(focus, "clinicalStatus")


def _ait_2(focus: Any, env: Env) -> bool:
    return not _coded(focus.get("verificationStatus"), _ALLERGY_VERIFICATION, _ERROR) \
        or not _present(focus, "clinicalStatus")


def _org_1(focus: Any, env: Env) -> bool:
    return _present(focus, "identifier") or _present(focus, "name")


# -- invariants of the resources a national server receives with every registration and booking (Consent,
# Appointment): 0.1-0.4 ms each through fhirpathpy, a quarter of a KZ Consent's validation.

def _ppc_1(focus: Any, env: Env) -> bool:
    return _present(focus, "policy") or _present(focus, "policyRule")


def _ppc_scope(code: str) -> Native:
    """``patient.exists() or scope.coding.where(system='something' and code=<code>).exists().not()``."""
    codes = frozenset({code})

    def check(focus: Any, env: Env) -> bool:
        return _present(focus, "patient") or not _coded(focus.get("scope"), "something", codes)

    return check


def _app_2(focus: Any, env: Env) -> bool:
    return _present(focus, "start") == _present(focus, "end")


_APP_3_STATUSES = frozenset({"proposed", "cancelled", "waitlist"})
_APP_4_STATUSES = frozenset({"noshow", "cancelled"})


def _app_3(focus: Any, env: Env) -> bool:
    """A status given only by its ``_status`` object has no value to be ``in`` the list: not true."""
    status = focus.get("status")
    return (_present(focus, "start") and _present(focus, "end")) or (isinstance(status, str)
                                                                      and status in _APP_3_STATUSES)


def _app_4(focus: Any, env: Env) -> bool:
    status = focus.get("status")
    return not _present(focus, "cancelationReason") or (isinstance(status, str) and status in _APP_4_STATUSES)


# -- the KZ profiles' own invariants whose FHIRPath is plain navigation, exists() and where() (two-valued all
# through): 0.1-0.4 ms each in fhirpathpy, on every KZ Appointment, Consent, Encounter, ServiceRequest, AuditEvent.

_KZ = "https://fhir.kzfhir.kz/"


def _members(focus: Any, key: str) -> list[Any]:
    """``focus.key``: its non-null values (one, or the items of an array) of one object or a list of them."""
    return [v for node in _listed(focus) if isinstance(node, dict) for v in _listed(node.get(key)) if v is not None]


def _has_extension(focus: Any, url: str) -> bool:
    """``extension('url').exists()``."""
    return any(isinstance(e, dict) and e.get("url") == url for e in _listed(focus.get("extension")))


def _actor_is(actor: Any, kind: str) -> bool:
    """``type = 'Kind' or reference.startsWith('Kind/')`` is true (an empty side is not)."""
    return actor.get("type") == kind or (isinstance(actor.get("reference"), str)
                                         and actor["reference"].startswith(kind + "/"))


def _kz_app_1(focus: Any, env: Env) -> bool:
    return any(isinstance(actor, dict) and _actor_is(actor, "Patient")
               and isinstance(actor.get("identifier"), dict) and actor["identifier"].get("system") == _KZ + "sid/iin"
               and _present(actor, "display") for actor in _members(focus.get("participant"), "actor"))


def _kz_service_type(focus: Any, env: Env) -> bool:
    """``serviceType.empty() or serviceType.coding.where(code.exists() and display.exists()).exists()``."""
    if not _members(focus, "serviceType"):
        return True
    return any(_present(c, "code") and _present(c, "display") for c in _codings(focus.get("serviceType")))


def _kz_app_3(focus: Any, env: Env) -> bool:
    return _has_extension(focus, _KZ + "StructureDefinition/kz-catchment-area") or any(
        isinstance(actor, dict) and _actor_is(actor, "Practitioner") and _present(actor, "display")
        for actor in _members(focus.get("participant"), "actor"))


def _kz_aud_1(focus: Any, env: Env) -> bool:
    return any(isinstance(agent, dict) and agent.get("requestor") is True and _present(agent, "who")
               for agent in _members(focus, "agent"))


def _kz_cns_1(focus: Any, env: Env) -> bool:
    representative = any(isinstance(p, dict) and _actor_is(p, "RelatedPerson") for p in _members(focus, "performer"))
    return not representative or _has_extension(focus, _KZ + "StructureDefinition/kz-representative-authority")


def _kz_cns_2(focus: Any, env: Env) -> bool:
    return all(isinstance(p, dict) and _present(p, "type") and _present(p, "actor")
               for p in _members(focus.get("provision"), "provision"))


def _kz_cns_4(focus: Any, env: Env) -> bool:
    provision = focus.get("provision")
    periods = _members(provision, "period")
    return (any(_present(period, "start") for period in periods) and bool(_members(provision, "purpose"))
            and bool(_members(provision, "class")) and bool(_members(provision, "action")))


def _kz_mr_1(focus: Any, env: Env) -> bool:
    return all(isinstance(d, dict) and (_present(d, "text") or _present(d, "timing"))
               for d in _members(focus, "dosageInstruction"))


_CONSILIUM = frozenset({"consilium"})


def _kz_sr_2(focus: Any, env: Env) -> bool:
    if not _coded(focus.get("category"), _KZ + "CodeSystem/kz-remote-service-form", _CONSILIUM):
        return True
    return len(_members(focus, "performer")) >= 2


def _either(first: str, second: str) -> Native:
    """``first.exists() or second.exists()`` (a primitive given only by its ``_name`` object exists)."""
    def check(focus: Any, env: Env) -> bool:
        return any(bool(_members(focus, key)) or focus.get("_" + key) is not None for key in (first, second))

    return check


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
    ("obs-6", "dataAbsentReason.empty() or value.empty()"): _obs_6,
    ("obs-7", "value.empty() or component.code.where(coding.intersect(%resource.code.coding).exists()).empty()"):
        _obs_7,
    ("prr-1", "orderDetail.empty() or code.exists()"): _present_or("orderDetail", "code"),
    ("cpl-3", "detail.empty() or reference.empty()"): _not_both("detail", "reference"),
    ("tim-1", "duration.empty() or durationUnit.exists()"): _present_or("duration", "durationUnit"),
    ("tim-2", "period.empty() or periodUnit.exists()"): _present_or("period", "periodUnit"),
    ("tim-4", "duration.exists() implies duration >= 0"): _not_negative("duration"),
    ("tim-5", "period.exists() implies period >= 0"): _not_negative("period"),
    ("tim-6", "periodMax.empty() or period.exists()"): _present_or("periodMax", "period"),
    ("tim-7", "durationMax.empty() or duration.exists()"): _present_or("durationMax", "duration"),
    ("tim-8", "countMax.empty() or count.exists()"): _present_or("countMax", "count"),
    ("tim-10", "timeOfDay.empty() or when.empty()"): _not_both("timeOfDay", "when"),
    (
        "con-3",
        "clinicalStatus.exists() or verificationStatus.coding.where(system='http://terminology.hl7.org/CodeSystem/"
        "condition-ver-status' and code = 'entered-in-error').exists() or category.select($this='problem-list-item')"
        ".empty()",
    ): _con_3,
    (
        "con-4",
        "abatement.empty() or clinicalStatus.coding.where(system='http://terminology.hl7.org/CodeSystem/"
        "condition-clinical' and (code='resolved' or code='remission' or code='inactive')).exists()",
    ): _con_4,
    (
        "con-5",
        "verificationStatus.coding.where(system='http://terminology.hl7.org/CodeSystem/condition-ver-status' and "
        "code='entered-in-error').empty() or clinicalStatus.empty()",
    ): _con_5,
    (
        "ait-1",
        "verificationStatus.coding.where(system = 'http://terminology.hl7.org/CodeSystem/"
        "allergyintolerance-verification' and code = 'entered-in-error').exists() or clinicalStatus.exists()",
    ): _ait_1,
    (
        "ait-2",
        "verificationStatus.coding.where(system = 'http://terminology.hl7.org/CodeSystem/"
        "allergyintolerance-verification' and code = 'entered-in-error').empty() or clinicalStatus.empty()",
    ): _ait_2,
    ("org-1", "(identifier.count() + name.count()) > 0"): _org_1,
    ("ppc-1", "policy.exists() or policyRule.exists()"): _ppc_1,
    **{(key, "patient.exists() or scope.coding.where(system='something' and code='" + code + "').exists().not()"):
       _ppc_scope(code) for key, code in (("ppc-2", "patient-privacy"), ("ppc-3", "research"), ("ppc-4", "adr"),
                                          ("ppc-5", "treatment"))},
    ("app-2", "start.exists() = end.exists()"): _app_2,
    ("app-3", "(start.exists() and end.exists()) or (status in ('proposed' | 'cancelled' | 'waitlist'))"): _app_3,
    ("app-4", "Appointment.cancelationReason.exists() implies (Appointment.status='noshow' or "
              "Appointment.status='cancelled')"): _app_4,
    (
        "kz-app-1",
        "participant.actor.where((type = 'Patient' or reference.startsWith('Patient/')) and identifier.system = "
        "'https://fhir.kzfhir.kz/sid/iin' and display.exists()).exists()",
    ): _kz_app_1,
    ("kz-app-2", "serviceType.empty() or serviceType.coding.where(code.exists() and display.exists()).exists()"):
        _kz_service_type,
    ("kz-enc-1", "serviceType.empty() or serviceType.coding.where(code.exists() and display.exists()).exists()"):
        _kz_service_type,
    (
        "kz-app-3",
        "extension('https://fhir.kzfhir.kz/StructureDefinition/kz-catchment-area').exists() or participant.actor"
        ".where((type = 'Practitioner' or reference.startsWith('Practitioner/')) and display.exists()).exists()",
    ): _kz_app_3,
    ("kz-aud-1", "agent.where(requestor = true and who.exists()).exists()"): _kz_aud_1,
    ("kz-aud-2", "what.exists() or query.exists()"): _either("what", "query"),
    (
        "kz-cns-1",
        "performer.where(type = 'RelatedPerson' or reference.startsWith('RelatedPerson/')).exists() implies "
        "extension('https://fhir.kzfhir.kz/StructureDefinition/kz-representative-authority').exists()",
    ): _kz_cns_1,
    ("kz-cns-2", "provision.provision.all(type.exists() and actor.exists())"): _kz_cns_2,
    (
        "kz-cns-4",
        "provision.period.start.exists() and provision.purpose.exists() and provision.class.exists() and "
        "provision.action.exists()",
    ): _kz_cns_4,
    ("kz-mr-1", "dosageInstruction.all(text.exists() or timing.exists())"): _kz_mr_1,
    ("kz-sr-1", "reasonCode.exists() or reasonReference.exists()"): _either("reasonCode", "reasonReference"),
    (
        "kz-sr-2",
        "category.coding.where(system = 'https://fhir.kzfhir.kz/CodeSystem/kz-remote-service-form' and code = "
        "'consilium').exists() implies performer.count() >= 2",
    ): _kz_sr_2,
    ("kz-iin-1", _TWELVE): _twelve_digits,
    ("kz-iin-2", "value.empty() or value.matches('^[0-9]{12}$').not() or value.kzIinValid()"): _identifier_check(
        "iin"
    ),
    ("kz-bin-1", _TWELVE): _twelve_digits,
    ("kz-bin-2", "value.empty() or value.matches('^[0-9]{12}$').not() or value.kzBinValid()"): _identifier_check(
        "bin"
    ),
}
