"""``POST Consent/$egov-consent``: a consent given or revoked in the e-government cabinet (AC-06).

Inputs: ``message`` (string: a ``docs/schemas/egov-consent-v1.json`` message) and ``signature``
(``sha256=<hex HMAC-SHA256 of the message>`` under ``KZFHIR_EGOV_CABINET_SECRET``). The caller is the
cabinet adapter's system client; anyone else is refused with an audited 403, and so is a message whose
signature does not hold. The patient is found by IIN inside a read-only unit (identity only, nothing is
disclosed); the Consent is written through the one write path with the patient's IIN as its verified signer
(the cabinet signed the patient in with EDS: the AC-08 rule for a signed consent recorded by the
organisation), so validation, audit, the patient's notification and the cache invalidation are the usual
ones. A receipt for the cabinet commits in the same unit (outbox topic ``egov-cabinet``, delivered to
``KZFHIR_EGOV_CABINET_URL``; it names the cabinet's consent id, the response the server's Consent); a refused
message gets a ``rejected`` receipt. A message whose consent id was
already applied answers as before and writes nothing (the cabinet may resend).
"""

from __future__ import annotations

import time
from typing import Any, NoReturn

import orjson

from fhir_server.errors import FhirError
from fhir_server.interactions.base import FhirResponse
from fhir_server.interactions.executor import execute
from fhir_server.interactions.plan import create_op, update_op
from fhir_server.jsonio import dumps
from fhir_server.operations.patient_ops import query_text, reject_unknown
from fhir_server.operations.registry import OperationCall, operation
from fhir_server.search.in_unit import find_in_unit
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.policy import Verdict
from fhir_server.security.refs import IIN_SYSTEM
from fhir_server.security.roles import SYSTEM
from fhir_server.storage.protocols import TxView
from fhir_server.telemed import egov_cabinet as cabinet

INPUTS = frozenset({"message", "signature"})
FUTURE_SKEW = 300.0  # seconds an adapter's clock may run ahead


def _text(call: OperationCall, name: str) -> str:
    value = call.one(name)
    if not isinstance(value, str) or not value.strip():
        raise FhirError("invalid", f"parameter {name!r} (string) is required", code="required", expression=name)
    return value


def _answer(status: int, outcome: str, consent: str | None, pretty: bool) -> FhirResponse:
    params: list[dict[str, Any]] = [{"name": "outcome", "valueCode": outcome}]
    if consent:
        params.append({"name": "consent", "valueReference": {"reference": consent}})
    return FhirResponse(status, dumps({"resourceType": "Parameters", "parameter": params}, pretty=pretty))


async def _reject(call: OperationCall, data: dict[str, Any], patient: str | None, error: FhirError) -> NoReturn:
    """Tell the cabinet (a ``rejected`` receipt) and audit the attempt, then answer with the error."""
    access = call.access
    if patient is not None:
        payload = cabinet.receipt(data, "rejected", None, str(error))
        access.notices.append((cabinet.TOPIC, patient, f"egov:{data['messageId']}:rejected", orjson.dumps(payload)))
    access.failed(AuditTarget("operation", "Consent", query=query_text(call), patient_id=patient), str(error))
    await access.flush()
    raise error


@operation("egov-consent", levels=("type",), types=("Consent",))
async def egov_consent(call: OperationCall) -> FhirResponse:
    if call.method != "POST":
        raise FhirError("method_not_allowed", "$egov-consent records a consent: use POST with a Parameters body")
    reject_unknown(call, INPUTS)
    settings = call.services.settings
    if settings.egov_cabinet_secret is None:
        raise FhirError("not_found", "$egov-consent is not configured (KZFHIR_EGOV_CABINET_SECRET)",
                        code="not-supported")
    access = call.access
    target = AuditTarget("operation", "Consent", query=query_text(call))
    if access.enabled and call.ctx.role != SYSTEM:
        await access.deny(target, Verdict.reject("$egov-consent is for the e-government cabinet adapter (system)"))
    message, signature = _text(call, "message"), _text(call, "signature")
    if not cabinet.signature_holds(settings.egov_cabinet_secret.get_secret_value(), message, signature):
        await access.deny(target, Verdict.reject("the cabinet message's signature does not hold (AC-06)"))
    try:
        data = cabinet.parse(message)
    except cabinet.MessageError as exc:
        raise FhirError("invalid", str(exc), code="structure", expression=exc.expression) from exc
    iin, consent_id = data["patient"]["iin"], data["consentId"]

    def look(view: TxView) -> tuple[list[str], list[dict[str, Any]]]:
        # identity only: which Patient has this IIN, which Consent has this cabinet id (nothing is returned)
        patients = [str(p["id"]) for p in find_in_unit(view, "Patient", [("identifier", f"{IIN_SYSTEM}|{iin}")], 2)]
        known = find_in_unit(view, "Consent", [("identifier", f"{cabinet.CONSENT_ID_SYSTEM}|{consent_id}")], 2)
        return patients, known

    patients, known = await access.transaction(look)
    patient = patients[0] if len(patients) == 1 else None
    age = time.time() - cabinet.issued_at(data)
    if age > settings.egov_cabinet_max_age_seconds or age < -FUTURE_SKEW:
        await _reject(call, data, patient, FhirError("unprocessable", "the message is stale or issued in the future "
                                                     "(replay protection, KZFHIR_EGOV_CABINET_MAX_AGE_SECONDS)",
                                                     code="business-rule", expression="message"))
    if patient is None:
        await _reject(call, data, None, FhirError("unprocessable", "no single patient of this server has the IIN "
                                                  "the message names", code="business-rule", expression="message"))
    assert patient is not None
    current = next((c for c in known if (c.get("patient") or {}).get("reference") == f"Patient/{patient}"), None)
    if known and current is None:
        await _reject(call, data, patient, FhirError("unprocessable", "the cabinet consent id belongs to another "
                                                     "patient", code="business-rule", expression="message"))
    if data["action"] == "give":
        if current is not None:  # resent: answered as before, nothing written
            return _answer(200, "already-recorded", f"Consent/{current['id']}", call.pretty)
        op = await create_op(call.req, "Consent", cabinet.consent(data, message, signature, patient))
    else:
        if current is None:
            await _reject(call, data, patient, FhirError("unprocessable", "no consent with this cabinet id is "
                                                         "recorded", code="business-rule", expression="message"))
        assert current is not None
        if current.get("status") == "inactive":
            return _answer(200, "already-revoked", f"Consent/{current['id']}", call.pretty)
        version = (current.get("meta") or {}).get("versionId")
        op = await update_op(call.req, "Consent", str(current["id"]), cabinet.revoked(current, data),
                             if_match=f'W/"{version}"' if version else None)
    op.signers = frozenset({iin})  # the cabinet's verified message stands for the patient's EDS (AC-08)
    outcome = "recorded" if data["action"] == "give" else "revoked"
    # the receipt commits in the write's own unit (the session's notices are written with it): no receipt
    # for a consent that was not written, no written consent without its receipt
    notice = (cabinet.TOPIC, patient, f"egov:{data['messageId']}", orjson.dumps(cabinet.receipt(
        data, outcome, f"Consent/{current['id']}" if current is not None else None)))
    access.notices.append(notice)
    try:
        await execute(call.req, [op], transaction=False)
    except FhirError as exc:
        if notice in access.notices:
            access.notices.remove(notice)
        await _reject(call, data, patient, exc)
    assert op.stored is not None
    return _answer(201 if outcome == "recorded" else 200, outcome, f"Consent/{op.stored.id}", call.pretty)
