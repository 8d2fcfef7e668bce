"""Agreement with the HL7 reference validator on its own R4 test cases (issue 14 §1).

Each case of ``tests/data/validator-cases-r4.tar.gz`` (FHIR/fhir-test-cases, Apache-2.0) is posted to
``$validate`` of a running server, the pipeline writes use too (structure, core invariants, declared and
core profiles, extensions, references, Bundle rules). A case is *valid* when the reference validator's
expected OperationOutcome has no error or fatal issue; the server agrees when it finds an error exactly then
(a body it cannot parse counts as an error: the reference validator reports it as fatal). Messages are not
compared. The agreement figure and each disagreement are reported as a warning in the test output.
"""

from __future__ import annotations

import json
import re
import warnings
from typing import Any

import httpx
import pytest

from tests.data import validator_cases

pytestmark = pytest.mark.open_mode

TARGET = 0.95  # issue 14's target for the shared cases
FHIR_JSON = {"content-type": "application/fhir+json"}
FHIR_XML = {"content-type": "application/fhir+xml"}

# The cases this server is known to judge differently, with the reason (docs/validation.md lists them too).
# A case that starts to agree must leave this list; a case that starts to disagree fails the test.
KNOWN_DISAGREEMENTS: dict[str, str] = {
    "bad-markdown-no-html": "run with the reference validator's noHtmlInMarkdown option, which makes HTML in "
    "markdown an error; the same input without it (bad-markdown) gives a warning, here too. The server has no "
    "such option",
    "contained-resource-bad-id-ignore": "run with validateContains=IGNORE (contained resources not validated at "
    "all); its twin contained-resource-bad-id, run with CHECK_VALID, reports the 65-character id and dom-3 as "
    "this server does. The server has no such option",
}


def _errors(outcome: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in outcome.get("issue", []) if i.get("severity") in ("error", "fatal")]


def _resource_type(raw: bytes) -> str:
    try:
        parsed = json.loads(raw)
    except ValueError:
        found = re.search(rb'"resourceType"\s*:\s*"([A-Za-z]+)"', raw)
        return found.group(1).decode() if found else "Basic"
    return str(parsed.get("resourceType", "Basic")) if isinstance(parsed, dict) else "Basic"


async def _load_supporting(client: httpx.AsyncClient, files: list[bytes]) -> None:
    """The definitions a case's manifest loads first are uploaded, as a regulator would upload an IG's."""
    for raw in files:
        xml = raw.lstrip().startswith(b"<")
        r = await client.post("/StructureDefinition", content=raw, headers=FHIR_XML if xml else FHIR_JSON)
        assert r.status_code == 201, r.text


async def _verdict(client: httpx.AsyncClient, raw: bytes) -> tuple[bool, list[str]]:
    """(server says invalid, the server's error messages)."""
    resource_type = _resource_type(raw)
    if resource_type == "Parameters":
        # $validate reads a Parameters body as its own input (R4 resource-operation-validate): a Parameters
        # resource to be validated goes in its ``resource`` parameter, bytes kept as they are.
        raw = b'{"resourceType":"Parameters","parameter":[{"name":"resource","resource":' + raw + b"}]}"
    r = await client.post(f"/{resource_type}/$validate", content=raw, headers=FHIR_JSON)
    outcome = r.json()
    errors = _errors(outcome)
    shown = [f"{(i.get('expression') or [''])[0]}: {i.get('diagnostics', '')}"[:160] for i in errors]
    return r.status_code >= 400 or bool(errors), shown


async def test_agreement_with_the_reference_validator(client: httpx.AsyncClient) -> None:
    cases = validator_cases()
    assert len(cases) == 45
    agree = 0
    disagreements: dict[str, str] = {}
    for case in cases:
        expected_invalid = bool(_errors(case["expected"]))
        await _load_supporting(client, case["supporting"])
        invalid, found = await _verdict(client, case["input"])
        if invalid == expected_invalid:
            agree += 1
            continue
        if expected_invalid:
            wanted = "; ".join(f"{(i.get('expression') or [''])[0]}: {i.get('details', {}).get('text', '')}"[:160]
                               for i in _errors(case["expected"]))
            disagreements[case["name"]] = f"false accept (reference: {wanted})"
        else:
            disagreements[case["name"]] = f"false reject ({'; '.join(found)})"
    ratio = agree / len(cases)
    report = "\n".join(f"  {name}: {why}" for name, why in sorted(disagreements.items()))
    warnings.warn(f"reference validator agreement: {agree}/{len(cases)} = {ratio:.1%}\n{report}", stacklevel=1)
    assert ratio >= TARGET, f"agreement {agree}/{len(cases)} = {ratio:.1%} < {TARGET:.0%}\n{report}"
    unexpected = {n: why for n, why in disagreements.items() if n not in KNOWN_DISAGREEMENTS}
    assert unexpected == {}, "\n".join(f"{n}: {why}" for n, why in unexpected.items())
    fixed = sorted(set(KNOWN_DISAGREEMENTS) - set(disagreements))
    assert fixed == [], f"now agree, remove from KNOWN_DISAGREEMENTS: {fixed}"
