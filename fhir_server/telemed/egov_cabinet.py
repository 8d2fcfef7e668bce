"""Consent given through the e-government portal's personal cabinet (AC-06), and receipts back to it.

The Law lets a consent be given in writing, as an electronic document, *or via the e-government portal
cabinet*. The operator's interface is not public, so the cabinet adapter (a service of the operator or of
the organisation) speaks a format of this server's, versioned and published as JSON Schema:
``docs/schemas/egov-consent-v1.json``. A message says that the patient (by IIN) gave or revoked a consent
in the cabinet, to whom (a medical organisation by BIN, or one practitioner), for what and how long.

Trust: the adapter signs the exact message bytes with HMAC-SHA256 under the secret shared with the
cabinet (``KZFHIR_EGOV_CABINET_SECRET``); the server checks it in constant time, refuses stale messages
(``issued`` older than ``KZFHIR_EGOV_CABINET_MAX_AGE_SECONDS``) and treats each cabinet consent id once.
The cabinet signs the patient in with their EDS, so a verified message stands for the patient's signature:
the Consent is recorded through the same rule as a signed written consent (AC-08, ``op.signers``), keeps the
message and its signature as ``Consent.sourceAttachment`` (the evidence, AC-21) and is tagged with the
channel. Everything here is pure; ``operations/egov_consent.py`` runs it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from fhir_server.security.refs import BIN_SYSTEM, KZ_BASE

SCHEMA_ID = "https://fhir.kzfhir.kz/schemas/egov-consent-v1.json"
CONSENT_ID_SYSTEM = f"{KZ_BASE}/sid/egov-consent"
CHANNEL_SYSTEM = f"{KZ_BASE}/CodeSystem/kz-consent-channel"
CHANNEL_CODE = "egov-cabinet"
TOPIC = "egov-cabinet"  # outbox topic of the receipts and notices to the cabinet
RECEIPT_FORMAT = "kz-egov-consent-receipt"
MAX_MESSAGE = 64 * 1024


class MessageError(ValueError):
    """The message is not a valid v1 message; ``expression`` names the failing part."""

    def __init__(self, text: str, expression: str = "message") -> None:
        super().__init__(text)
        self.expression = expression


@cache
def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((Path(__file__).parent / "data" / "egov-consent-v1.json").read_text("utf-8"))
    return data


def sign(secret: str, message: str) -> str:
    """``sha256=<hex>`` of the message's UTF-8 bytes (the adapter's side; tests use it too)."""
    return "sha256=" + hmac.new(secret.encode(), message.encode("utf-8"), hashlib.sha256).hexdigest()


def signature_holds(secret: str, message: str, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, message), signature.strip())


def parse(message: str) -> dict[str, Any]:
    """The message, checked against the published schema (jsonschema)."""
    import jsonschema

    if len(message.encode("utf-8")) > MAX_MESSAGE:
        raise MessageError(f"the message is larger than {MAX_MESSAGE} bytes")
    try:
        data = json.loads(message)
    except json.JSONDecodeError as exc:
        raise MessageError(f"the message is not JSON: {exc.msg}") from exc
    validator = jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        where = ".".join(str(p) for p in errors[0].absolute_path)
        raise MessageError(f"the message does not fit {SCHEMA_ID}: {errors[0].message}"
                           + (f" (at {where})" if where else ""))
    return dict(data)


def issued_at(data: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(data["issued"]).replace("Z", "+00:00")).timestamp()


def consent(data: dict[str, Any], message: str, signature: str, patient_id: str) -> dict[str, Any]:
    """The active Consent a ``give`` message records (R4 Consent, privacy consent, opt-in)."""
    grantee = data["grantee"]
    actor_ref = {"identifier": {"system": BIN_SYSTEM, "value": grantee["bin"]}} if "bin" in grantee \
        else {"reference": grantee["practitioner"]}
    permit: dict[str, Any] = {"type": "permit", "actor": [{"role": {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}]},
        "reference": actor_ref}]}
    if data.get("actions"):
        permit["action"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction",
                                         "code": code}]} for code in data["actions"]]
    if data.get("purpose"):
        permit["purpose"] = [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": data["purpose"]}]
    provision: dict[str, Any] = {"provision": [permit]}
    if data.get("period"):
        provision["period"] = dict(data["period"])
    evidence = json.dumps({"message": message, "signature": signature}, ensure_ascii=False).encode("utf-8")
    return {
        "resourceType": "Consent",
        "meta": {"tag": [{"system": CHANNEL_SYSTEM, "code": CHANNEL_CODE,
                          "display": "given via the e-government portal cabinet (AC-06)"}]},
        "identifier": [{"system": CONSENT_ID_SYSTEM, "value": data["consentId"]}],
        "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "dateTime": data["issued"],
        "sourceAttachment": {"contentType": "application/json", "data": base64.b64encode(evidence).decode("ascii"),
                             "title": f"e-government cabinet message {data['messageId']}"},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": provision,
    }


def revoked(current: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """The Consent a ``revoke`` message leaves: inactive, the revocation dated (R4: inactive = revoked)."""
    out = {k: v for k, v in current.items() if k != "meta"}
    out["status"] = "inactive"
    out["dateTime"] = data["issued"]
    return out


def receipt(data: dict[str, Any], outcome: str, consent_ref: str | None, reason: str | None = None
            ) -> dict[str, Any]:
    """What the cabinet is told back (through the outbox, ``TOPIC``): the message, the outcome, the Consent."""
    out: dict[str, Any] = {"format": RECEIPT_FORMAT, "version": "1", "messageId": data.get("messageId"),
                           "consentId": data.get("consentId"), "outcome": outcome}
    if consent_ref:
        out["consent"] = consent_ref
    if reason:
        out["reason"] = reason
    return out
