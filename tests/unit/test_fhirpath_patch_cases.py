"""The official R4 FHIRPath Patch test cases (FHIR/fhir-test-cases ``r4/patch/fhir-patch-tests.xml``):
each input patched by its Parameters gives the expected output, or fails where the case expects an
error. The cases are FHIR XML, read with the server's own converter (fhir_server/formats)."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from lxml import etree

from fhir_server.errors import FhirError
from fhir_server.formats import resource_from_xml
from fhir_server.interactions.fhirpath_patch import apply_fhirpath_patch
from tests.data import DATA
from tests.formats.exact import exact

# tests/data/README.md: source and licence
CASES = etree.fromstring(gzip.decompress((DATA / "fhir-patch-tests-r4.xml.gz").read_bytes()))


def _resource(case: etree._Element, part: str) -> dict[str, Any] | None:
    holder = case.find(part)
    if holder is None:
        return None
    element = next(child for child in holder if isinstance(child.tag, str))
    return resource_from_xml(etree.tostring(element))


@pytest.mark.parametrize("case", CASES.findall("case"), ids=lambda case: case.get("name"))
def test_official_fhirpath_patch_case(case: etree._Element):
    source, patch = _resource(case, "input"), _resource(case, "diff")
    assert source is not None and patch is not None
    expected, error = _resource(case, "output"), case.find("error")
    if error is not None:
        with pytest.raises(FhirError) as info:
            apply_fhirpath_patch(source, patch)
        assert info.value.status == 422 and info.value.issues[0].expression == "Parameters.parameter[0]"
        return
    before = exact(source)
    assert exact(apply_fhirpath_patch(source, patch)) == exact(expected)
    assert exact(source) == before  # the input is never changed


def test_all_official_cases_are_run():
    assert len(CASES.findall("case")) == 33
