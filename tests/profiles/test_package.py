"""The IG package: SearchParameters, NamingSystems and the ImplementationGuide resource agree."""

from __future__ import annotations

import fhirpathpy
import pytest
from fhirpathpy.models import models

from profiles import KZ_BASE, load_package, package_resources
from tests.profiles.conftest import load_json, valid_examples


def test_every_package_resource_uses_the_canonical_base() -> None:
    for resource in load_package():
        if "url" in resource:
            assert resource["url"].startswith(KZ_BASE + "/"), resource["id"]


def test_implementation_guide_lists_every_package_resource() -> None:
    (guide,) = package_resources("ImplementationGuide")
    listed = {r["reference"]["reference"] for r in guide["definition"]["resource"]}
    others = {f"{r['resourceType']}/{r['id']}" for r in load_package() if r["resourceType"] != "ImplementationGuide"}
    assert listed == others


def test_naming_systems_declare_iin_and_bin() -> None:
    ids = {ns["uniqueId"][0]["value"]: ns["type"]["coding"][0]["code"] for ns in package_resources("NamingSystem")}
    assert ids == {f"{KZ_BASE}/sid/iin": "NI", f"{KZ_BASE}/sid/bin": "XX"}


@pytest.mark.req("TM-04")
@pytest.mark.parametrize(("code", "type_"), [("iin", "Patient"), ("iin", "Practitioner"), ("bin", "Organization")])
def test_search_parameter_expression_finds_the_national_identifier(code: str, type_: str) -> None:
    (param,) = [p for p in package_resources("SearchParameter") if p["code"] == code and p["base"] == [type_]]
    assert param["url"] == f"{KZ_BASE}/SearchParameter/{type_}-{code}" and param["type"] == "token"
    for path in valid_examples():
        resource = load_json(path)
        if resource["resourceType"] == type_:
            found = fhirpathpy.evaluate(resource, param["expression"], {}, models["r4"])
            assert [f["system"] for f in found] == [f"{KZ_BASE}/sid/{code}"]
