"""The ``kz-telecom-session`` extension on a consultation Encounter (profiles/package, TM-20) and the
rule that keeps join links out of every stored resource (TM-21).

Which sub-extensions it may carry is read from its StructureDefinition (definitions are data): its slices
are closed and none of them holds a link. The write validator below enforces that on every write and in
every validation mode (lenient writes do not check cardinality inside extensions), so no link reaches the
store and therefore no search, ``_include``, history, ``$everything``, ``$export`` or subscription can show
one.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fhir_server.validation.issues import Issue
from profiles import package_resources

URL = "https://fhir.kzfhir.kz/StructureDefinition/kz-telecom-session"
VIRTUAL = ("http://terminology.hl7.org/CodeSystem/v3-ActCode", "VR")


@cache
def slices() -> frozenset[str]:
    """The sub-extension urls the StructureDefinition defines (its slices' fixed urls)."""
    (sd,) = [s for s in package_resources("StructureDefinition") if s.get("url") == URL]
    return frozenset(str(e["fixedUri"]) for e in sd["differential"]["element"]
                     if e.get("path") == "Extension.extension.url" and "fixedUri" in e)


def find(resource: dict[str, Any]) -> dict[str, Any] | None:
    for ext in resource.get("extension", []) or []:
        if isinstance(ext, dict) and ext.get("url") == URL:
            return ext
    return None


def parts(ext: dict[str, Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for sub in ext.get("extension", []) or []:
        if isinstance(sub, dict):
            value = next((v for k, v in sub.items() if k.startswith("value")), None)
            out.setdefault(str(sub.get("url")), []).append(value)
    return out


def build(service: str, session_id: str, *, start: str | None, end: str | None = None,
          participants: tuple[str, ...] = ()) -> dict[str, Any]:
    subs: list[dict[str, Any]] = [{"url": "service", "valueString": service},
                                  {"url": "sessionId", "valueString": session_id}]
    if start:
        subs.append({"url": "start", "valueDateTime": start})
    if end:
        subs.append({"url": "end", "valueDateTime": end})
    subs += [{"url": "participant", "valueReference": {"reference": ref}} for ref in participants]
    return {"url": URL, "extension": subs}


def with_session(resource: dict[str, Any], ext: dict[str, Any]) -> dict[str, Any]:
    kept = [e for e in resource.get("extension", []) or [] if not (isinstance(e, dict) and e.get("url") == URL)]
    return {**resource, "extension": [*kept, ext]}


def is_virtual(encounter: dict[str, Any]) -> bool:
    cls = encounter.get("class")
    return isinstance(cls, dict) and (cls.get("system"), cls.get("code")) == VIRTUAL


def session_issues(resource: dict[str, Any], mode: str) -> list[Issue]:
    """A ``Services.extra_validators`` entry: the session extension holds only its defined parts, each once
    where the definition says so, and never a link (TM-21)."""
    ext = find(resource) if resource.get("resourceType") == "Encounter" else None
    if ext is None:
        return []
    where = f"Encounter.extension('{URL}')"
    issues: list[Issue] = []
    if any(k.startswith("value") for k in ext):
        issues.append(Issue("error", "structure", "the telecom session is recorded in its parts, not a value",
                            where))
    found = parts(ext)
    for name in sorted(set(found) - slices()):
        issues.append(Issue("error", "structure", f"the telecom session has no part {name!r}: join links and "
                            "other credentials are never stored (TM-21; docs/consultation.md)",
                            f"{where}.extension('{name}')"))
    for name in ("service", "sessionId"):
        if len(found.get(name, [])) != 1 or not isinstance(found[name][0], str):
            issues.append(Issue("error", "required", f"the telecom session needs exactly one {name} string",
                                f"{where}.extension('{name}')"))
    for name in ("start", "end"):
        if len(found.get(name, [])) > 1:
            issues.append(Issue("error", "structure", f"the telecom session has one {name} at most",
                                f"{where}.extension('{name}')"))
    session_id = (found.get("sessionId") or [None])[0]
    if isinstance(session_id, str) and "://" in session_id:
        issues.append(Issue("error", "value", "a session id is an opaque handle, not a link (TM-21)",
                            f"{where}.extension('sessionId')"))
    return issues
