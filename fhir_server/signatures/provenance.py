"""A Provenance for every stored signed Bundle (TM-10 "signed with the doctor's EDS", AC-25).

Runs as a write hook inside the same store unit as the Bundle version, so the record and the evidence
of who signed it commit together. The Provenance (R4 provenance.html) has:

- ``target``: the stored version, ``Bundle/{id}/_history/{version}``;
- ``recorded``: the unit's timestamp; ``occurredDateTime``: ``Signature.when`` (claimed by the signer);
- ``activity``: v3-DocumentCompletion ``LA`` (legally authenticated);
- ``agent``: type ``author``; ``who`` a logical reference to the signer (IIN or BIN from the certificate,
  the certificate's common name; the literal reference too when it names a resource on this server
  with the same IIN / BIN);
  ``onBehalfOf`` the organisation (BIN) of an employee certificate;
- ``signature``: a copy of the verified ``Bundle.signature``, which still verifies against the target
  (its ``targetFormat`` names the ``#document`` canonicalization), carrying the extension
  ``SIGNER_CERTIFICATE`` with the signer certificate (base64 DER), subject, issuer, serial number,
  IIN, BIN, algorithm and whether the chain was trusted at write time.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from fhir_server.errors import FhirError
from fhir_server.interactions.base import Services
from fhir_server.interactions.write import store_version
from fhir_server.jsonio import reload
from fhir_server.security.refs import BIN_SYSTEM, IIN_SYSTEM, KZ_BASE, relative_ref
from fhir_server.signatures.service import signer_certificate
from fhir_server.signatures.signer import entry_resource, expected_signer, identifier_value
from fhir_server.signatures.validator import installed
from fhir_server.storage.protocols import StoredResource, TxView
from signing import VerificationStatus

SIGNER_CERTIFICATE = f"{KZ_BASE}/StructureDefinition/kz-signer-certificate"
_AUTHOR = {"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "author",
           "display": "Author"}
_LEGALLY_AUTHENTICATED = {"system": "http://terminology.hl7.org/CodeSystem/v3-DocumentCompletion",
                          "code": "LA", "display": "legally authenticated"}


def _common_name(cert: x509.Certificate | None) -> str | None:
    if cert is None:
        return None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def certificate_extension(status: VerificationStatus, cert: x509.Certificate | None) -> dict[str, Any]:
    """The ``kz-signer-certificate`` complex extension describing the signer's certificate."""
    parts: list[dict[str, Any]] = []
    if cert is not None:
        der = base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii")
        parts += [{"url": "certificate", "valueBase64Binary": der},
                  {"url": "issuer", "valueString": cert.issuer.rfc4514_string()},
                  {"url": "serialNumber", "valueString": format(cert.serial_number, "x")}]
    if status.signer_subject:
        parts.append({"url": "subject", "valueString": status.signer_subject})
    if status.iin:
        parts.append({"url": "iin", "valueIdentifier": {"system": IIN_SYSTEM, "value": status.iin}})
    if status.bin:
        parts.append({"url": "bin", "valueIdentifier": {"system": BIN_SYSTEM, "value": status.bin}})
    if status.algorithm:
        parts.append({"url": "algorithm", "valueString": status.algorithm})
    parts.append({"url": "trusted", "valueBoolean": status.trusted})
    return {"url": SIGNER_CERTIFICATE, "extension": parts}


def _server_link(view: TxView, bundle: dict[str, Any], who: Any, status: VerificationStatus) -> str | None:
    """``Type/id`` of the signer on this server: only for a reference that does not point inside the
    document, to a stored resource whose IIN / BIN is the certificate's (so the link is proven)."""
    literal = relative_ref(who.get("reference")) if isinstance(who, dict) else None
    if literal is None or entry_resource(bundle, who) is not None:
        return None
    rtype, _, rid = literal.partition("/")
    current = view.current(rtype, rid)
    if current is None or current.deleted or current.data is None:
        return None
    stored = reload(current.data)
    iin, bin_ = identifier_value(stored, IIN_SYSTEM), identifier_value(stored, BIN_SYSTEM)
    return literal if (iin and iin == status.iin) or (bin_ and bin_ == status.bin) else None


def _who(view: TxView, bundle: dict[str, Any], status: VerificationStatus, who_type: str | None,
         name: str | None) -> dict[str, Any]:
    who: dict[str, Any] = {}
    link = _server_link(view, bundle, bundle["signature"].get("who"), status)
    if link is not None:
        who["reference"] = link
    if who_type:
        who["type"] = who_type
    if status.iin and who_type != "Organization":
        who["identifier"] = {"system": IIN_SYSTEM, "value": status.iin}
    elif status.bin:
        who["identifier"] = {"system": BIN_SYSTEM, "value": status.bin}
    who["display"] = name or status.signer_subject or "unknown signer"
    return who


def build_provenance(view: TxView, bundle: dict[str, Any], stored: StoredResource,
                     status: VerificationStatus) -> dict[str, Any]:
    """The Provenance resource recording who signed this Bundle version, when, with which certificate."""
    signature = dict(bundle["signature"])
    cert = signer_certificate(status)
    who_type = expected_signer(bundle, signature).who_type
    agent: dict[str, Any] = {"type": {"coding": [_AUTHOR]},
                             "who": _who(view, bundle, status, who_type, _common_name(cert))}
    if status.bin and who_type != "Organization":
        agent["onBehalfOf"] = {"type": "Organization",
                               "identifier": {"system": BIN_SYSTEM, "value": status.bin}}
    signature["extension"] = [*signature.get("extension", []), certificate_extension(status, cert)]
    provenance: dict[str, Any] = {
        "resourceType": "Provenance",
        "target": [{"reference": f"Bundle/{stored.id}/_history/{stored.version}"}],
        "recorded": view.timestamp,
        "activity": {"coding": [_LEGALLY_AUTHENTICATED]},
        "agent": [agent],
        "signature": [signature],
    }
    if isinstance(signature.get("when"), str):
        provenance["occurredDateTime"] = signature["when"]
    return provenance


def _verify_now(services: Services, resource: dict[str, Any]) -> VerificationStatus | None:
    """Check the Bundle here and refuse it (the unit rolls back: 422) when the validators did not run."""
    validation = installed(services)
    if validation is None:
        raise RuntimeError("fhir_server.signatures.install(services) was not called")
    issues, status = validation.check(resource)
    if any(i.is_error for i in issues):
        raise FhirError("unprocessable", next(i for i in issues if i.is_error).diagnostics, issues=issues)
    return status


def _status_for(services: Services, resource: dict[str, Any]) -> VerificationStatus | None:
    """The verification the validator made moments ago in this request, else a fresh one.

    With ``validate_on_write`` off the validators did not run, so the signature rules are enforced
    here, whatever the validation setting (AC-25); a remembered result is then not used, as it may be
    about other content carrying the same signature value.
    """
    if services.settings.validate_on_write:
        validation = installed(services)
        remembered = validation.service.recall(resource["signature"]) if validation is not None else None
        if remembered is not None:
            return remembered
    return _verify_now(services, resource)


def record_provenance(view: TxView, services: Services, resource: dict[str, Any],
                      stored: StoredResource) -> None:
    """Write hook: after a signed Bundle version is stored, store its Provenance in the same unit.

    Only Bundles are looked at, so the Provenance stored here (which runs the hooks again) ends the
    recursion at once.
    """
    if resource.get("resourceType") != "Bundle":
        return
    if not isinstance(resource.get("signature"), dict):
        if not services.settings.validate_on_write:
            _verify_now(services, resource)  # an unsigned record is refused when signatures are required
        return
    status = _status_for(services, resource)
    if status is not None:
        provenance = build_provenance(view, resource, stored, status)
        store_version(view, services, provenance, "Provenance", str(uuid.uuid4()), 1, "POST")
