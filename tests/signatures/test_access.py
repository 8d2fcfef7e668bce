"""``$verify-signature`` under the access policy: the instance level is a read of the stored record."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhir_server.security.auth import issue_dev_token
from tests.signatures.helpers import FHIR_JSON, ServerFactory, Sign, document_bundle


@pytest.mark.req("AC-25")
@pytest.mark.req("AC-12")
async def test_instance_level_is_allowed_only_to_whom_the_record_may_be_shown(
        server: ServerFactory, sign: Sign, tmp_path: Path) -> None:
    database, key = tmp_path / "shared.sqlite", tmp_path / "dev-jwks.json"
    signed = await sign(document_bundle())
    async with server(database=database) as client:  # loaded with security off
        bundle_id = (await client.post("/Bundle", json=signed, headers=FHIR_JSON)).json()["id"]
    async with server(database=database, security_enabled=True, dev_key_path=key) as client:
        anonymous = await client.get(f"/Bundle/{bundle_id}/$verify-signature")
        verdicts = {}
        for patient in ("p1", "someone-else"):
            token = issue_dev_token("patient", f"Patient/{patient}", key_path=key)
            response = await client.get(f"/Bundle/{bundle_id}/$verify-signature",
                                        headers={"Authorization": f"Bearer {token}"})
            verdicts[patient] = response.status_code
    assert anonymous.status_code == 401
    assert verdicts == {"p1": 200, "someone-else": 404}  # the record's patient, nobody unrelated
