"""Who a Bundle signature names as signer: the IIN / BIN the certificate is checked against."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.security.refs import BIN_SYSTEM, IIN_SYSTEM
from fhir_server.signatures import ExpectedSigner, expected_signer, is_record

pytestmark = pytest.mark.req("AC-25")


def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "document",
            "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources]}


PRACTITIONER = {"resourceType": "Practitioner", "id": "d1",
                "identifier": [{"system": IIN_SYSTEM, "value": "1" * 12}]}
ORGANIZATION = {"resourceType": "Organization", "id": "o1",
                "identifier": [{"system": BIN_SYSTEM, "value": "2" * 12}]}
ROLE = {"resourceType": "PractitionerRole", "id": "r1", "practitioner": {"reference": "Practitioner/d1"},
        "organization": {"reference": "urn:uuid:o1"}}


@pytest.mark.parametrize(("who", "expected"), [
    ({"reference": "urn:uuid:d1"}, ExpectedSigner("1" * 12, None, "Practitioner")),
    ({"reference": "Practitioner/d1"}, ExpectedSigner("1" * 12, None, "Practitioner")),
    ({"reference": "https://mis.example.kz/fhir/Practitioner/d1/_history/3"},
     ExpectedSigner("1" * 12, None, "Practitioner")),
    ({"reference": "urn:uuid:o1"}, ExpectedSigner(None, "2" * 12, "Organization")),
    ({"reference": "urn:uuid:r1"}, ExpectedSigner("1" * 12, "2" * 12, "PractitionerRole")),
    ({"type": "Practitioner", "identifier": {"system": IIN_SYSTEM, "value": "3" * 12}},
     ExpectedSigner("3" * 12, None, "Practitioner")),
    ({"reference": "Practitioner/elsewhere"}, ExpectedSigner()),
])
def test_signer_is_resolved_in_the_bundle_or_from_the_identifier(who: dict[str, Any],
                                                                 expected: ExpectedSigner) -> None:
    assert expected_signer(_bundle(PRACTITIONER, ORGANIZATION, ROLE), {"who": who}) == expected


def test_organisation_acted_for_gives_the_expected_bin() -> None:
    signature = {"who": {"reference": "urn:uuid:d1"}, "onBehalfOf": {"reference": "urn:uuid:o1"}}
    assert expected_signer(_bundle(PRACTITIONER, ORGANIZATION), signature) == ExpectedSigner(
        "1" * 12, "2" * 12, "Practitioner")


def test_records_are_documents_or_bundles_led_by_a_composition() -> None:
    composition = {"resourceType": "Composition", "id": "c"}
    assert is_record({"resourceType": "Bundle", "type": "document"})
    assert is_record({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": composition}]})
    assert not is_record({"resourceType": "Bundle", "type": "collection",
                          "entry": [{"resource": PRACTITIONER}]})
    assert not is_record({"resourceType": "Bundle", "type": "searchset"})
