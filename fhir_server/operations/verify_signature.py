"""``Bundle/$verify-signature`` (AC-25, TM-10): the details of every signature of a Bundle.

- type level, ``POST [base]/Bundle/$verify-signature`` with a Bundle, or a Parameters with ``resource``;
- instance level, ``GET|POST [base]/Bundle/{id}/$verify-signature``: the stored current version.

Answers 200 with a ``Parameters``: ``result`` (every signature verifies, and there is at least one),
then one ``signature`` parameter per signature (``Bundle.signature`` and that of each entry that is a
signed Bundle) with the parts ``path``, ``ok``, ``intact``, ``valid``, ``trusted``, ``revoked``,
``format``, ``finding`` (``reason`` code + ``message``, one per refusal reason), ``note``,
``signerSubject``, ``iin``, ``bin``, ``expectedIin``, ``expectedBin``, ``signingTime`` (claimed by the
signer), ``algorithm``, ``certificate`` (base64 DER) and ``who``. The checks and the reason codes are
those of the write path (docs/signing.md); verification happens now, at the time of the call.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from fhir_server.errors import FhirError
from fhir_server.interactions.base import FhirResponse, Services
from fhir_server.jsonio import dumps, reload
from fhir_server.operations.registry import OperationCall, operation
from fhir_server.security.policy import Action
from fhir_server.signatures.service import SignatureService, signer_certificate
from fhir_server.signatures.signer import ExpectedSigner, expected_signer
from fhir_server.signatures.validator import installed
from signing import VerificationStatus

_FALLBACK: dict[int, SignatureService] = {}  # servers that did not install signature checking


def _service(services: Services) -> SignatureService:
    validation = installed(services)
    if validation is not None:
        return validation.service
    return _FALLBACK.setdefault(id(services), SignatureService(services.settings))


def _signatures(bundle: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(FHIRPath, signed Bundle, Signature) for the Bundle's signature and its signed entry Bundles."""
    found: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    if isinstance(bundle.get("signature"), dict):
        found.append(("Bundle.signature", bundle, bundle["signature"]))
    entries = bundle.get("entry")
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        inner = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(inner, dict) or inner.get("resourceType") != "Bundle":
            continue
        if isinstance(inner.get("signature"), dict):
            found.append((f"Bundle.entry[{i}].resource.signature", inner, inner["signature"]))
    return found


def _value_parts(status: VerificationStatus, expected: ExpectedSigner, signature: dict[str, Any]
                 ) -> list[dict[str, Any]]:
    cert = signer_certificate(status)
    optional: list[tuple[str, str, Any]] = [
        ("signerSubject", "valueString", status.signer_subject), ("iin", "valueString", status.iin),
        ("bin", "valueString", status.bin), ("expectedIin", "valueString", expected.iin),
        ("expectedBin", "valueString", expected.bin), ("algorithm", "valueString", status.algorithm),
        ("signingTime", "valueDateTime",
         status.signing_time.isoformat().replace("+00:00", "Z") if status.signing_time else None),
        ("certificate", "valueBase64Binary", _der_base64(cert) if cert is not None else None),
        ("who", "valueReference", signature.get("who") if isinstance(signature.get("who"), dict) else None),
    ]
    return [{"name": name, kind: value} for name, kind, value in optional if value is not None]


def _der_base64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii")


def signature_parameter(path: str, status: VerificationStatus, expected: ExpectedSigner,
                        signature: dict[str, Any]) -> dict[str, Any]:
    """One ``signature`` parameter describing one verification."""
    parts: list[dict[str, Any]] = [{"name": "path", "valueString": path},
                                   {"name": "ok", "valueBoolean": status.ok}]
    parts += [{"name": flag, "valueBoolean": getattr(status, flag)} for flag in ("intact", "valid", "trusted",
                                                                                 "revoked")]
    parts.append({"name": "format", "valueCode": status.format})
    parts += [{"name": "finding", "part": [{"name": "reason", "valueCode": f.reason.value},
                                           {"name": "message", "valueString": f.message}]}
              for f in status.findings]
    parts += [{"name": "note", "valueString": note} for note in status.notes]
    parts += _value_parts(status, expected, signature)
    return {"name": "signature", "part": parts}


async def verify_all(services: Services, bundle: dict[str, Any]) -> dict[str, Any]:
    """The Parameters answer for one Bundle."""
    service = _service(services)
    params: list[dict[str, Any]] = []
    all_ok = True
    for path, signed, signature in _signatures(bundle):
        expected = expected_signer(signed, signature)
        status = await service.verify(signed, signature, expected.iin, expected.bin)
        all_ok = all_ok and status.ok
        params.append(signature_parameter(path, status, expected, signature))
    result = {"name": "result", "valueBoolean": all_ok and bool(params)}
    return {"resourceType": "Parameters", "parameter": [result, *params]}


def _given_bundle(call: OperationCall) -> dict[str, Any]:
    body = call.body
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        body = call.one("resource")
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise FhirError("invalid", "Bundle/$verify-signature needs a Bundle: the request body, or a "
                        "Parameters with a 'resource' parameter", code="required", expression="resource")
    return body


async def _stored_bundle(call: OperationCall) -> dict[str, Any]:
    """The stored record, as a read of it (404 alike for unknown and hidden, 410 for a visible deletion)."""
    assert call.resource_id is not None
    stored = await call.access.read("Bundle", call.resource_id, action=Action.OPERATION, interaction="operation")
    bundle: dict[str, Any] = reload(stored.data or b"{}")
    return bundle


@operation("verify-signature", levels=("type", "instance"), types=("Bundle",))
async def verify_signature(call: OperationCall) -> FhirResponse:
    bundle = await _stored_bundle(call) if call.resource_id is not None else _given_bundle(call)
    return FhirResponse(200, dumps(await verify_all(call.services, bundle), pretty=call.pretty))
