"""A consilium's opinions (TM-08): who may give one, on every write path.

A **consilium request** is a ServiceRequest of category ``kz-remote-service-form#consilium`` naming two or more
performers (kz-sr-2, profiles/). A participant's **opinion** is a Communication ``basedOn`` that request — the
project's model of a practitioner's message about a patient (a recommendation is one ``basedOn`` the CarePlan,
recommendations.py): ``subject`` the request's patient, ``sender`` the participant, ``recipient`` the requester,
``payload`` the text, ``status`` completed with ``sent``. The requester reads the opinions with
``GET Communication?based-on=ServiceRequest/[id]``; the MIS writes them the same way the portal does.

The rule runs inside the write unit after every write was judged (a unit hook, like slots.py), so it holds for a
plain ``POST``/``PUT``/``PATCH``, Bundle entries and conditional forms alike, and it reads the unit's own writes:

- the participants are the request's ``performer`` and ``requester``; an opinion's ``sender`` must be one of them
  (422, ``Communication.sender``), and its ``subject`` the request's patient (422, ``Communication.subject``);
- a person writes only their own opinion: a practitioner (or anyone else signed in as a person, a patient
  included) who is not a participant, or who names another participant as the sender, is refused with an
  audited 403 (the patient's Consent may let them write about the patient; taking part in the consilium is
  another matter); only an MIS (the ``system`` role) writes an opinion on a participant's behalf;
- a request that is completed, revoked or entered-in-error takes no more opinions (409).

A request the caller may not see is as absent as an unknown id (nothing about it is told); such a Communication
is then judged only as any Communication about its own subject. Anything ``basedOn`` other ServiceRequests is
not concerned.
"""

from __future__ import annotations

from typing import Any

import orjson

from fhir_server.errors import FhirError
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.policy import Action
from fhir_server.security.session import patients_of
from fhir_server.security.tx_facts import TxFacts
from fhir_server.storage.protocols import TxView

FORM = "https://fhir.kzfhir.kz/CodeSystem/kz-remote-service-form"
CLOSED = frozenset({"completed", "revoked", "entered-in-error"})
_WRITES = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def is_consilium(request: dict[str, Any]) -> bool:
    return any(c.get("system") == FORM and c.get("code") == "consilium"
               for concept in request.get("category") or [] if isinstance(concept, dict)
               for c in concept.get("coding") or [] if isinstance(c, dict))


def participants(request: dict[str, Any]) -> set[str]:
    """``Type/id`` of the request's performers and requester."""
    refs = [*(request.get("performer") or []), request.get("requester")]
    return {str(r["reference"]) for r in refs if isinstance(r, dict) and isinstance(r.get("reference"), str)}


def _requests(view: TxView, req: Any, communication: dict[str, Any]) -> list[dict[str, Any]]:
    """The consilium requests a Communication is ``basedOn`` that the caller may see (current versions, the
    unit's writes included); one they may not see is as absent as an unknown id."""
    found = []
    facts = TxFacts(view)
    for based in communication.get("basedOn") or []:
        ref = based.get("reference") if isinstance(based, dict) else None
        if not isinstance(ref, str) or not ref.startswith("ServiceRequest/") or "/" in ref[15:]:
            continue
        stored = view.current("ServiceRequest", ref[15:])
        if stored is None or stored.deleted or stored.data is None:
            continue
        request = orjson.loads(stored.data)
        if not is_consilium(request):
            continue
        if req.access.enabled and not req.access.decide_with(facts, Action.READ, request,
                                                             patients_of(stored, request)).allowed:
            continue
        found.append(request)
    return found


class ConsiliumOpinions:
    """The unit hook (``Services.change_hooks`` with ``unit_begin``/``unit_end``, interactions/executor.py)."""

    def __call__(self, view: TxView, services: Any, previous: bytes | None, resource: dict[str, Any],
                 stored: Any) -> None:
        return None  # judged once per unit, with the caller (unit_end)

    def unit_begin(self, view: TxView, req: Any, ops: list[Any]) -> None:
        return None

    def unit_end(self, view: TxView, req: Any, ops: list[Any]) -> None:
        for op in ops:
            if op.resource_type != "Communication" or op.method not in _WRITES or op.stored is None \
                    or op.stored.data is None or op.outcome not in ("created", "updated"):
                continue
            communication = orjson.loads(op.stored.data)
            for request in _requests(view, req, communication):
                self._check(req, op, communication, request)

    @staticmethod
    def _check(req: Any, op: Any, communication: dict[str, Any], request: dict[str, Any]) -> None:
        where = op.where + ".resource." if op.where else ""
        target = f"ServiceRequest/{request.get('id')}"
        people = participants(request)
        ctx = req.access.ctx
        sender = str((communication.get("sender") or {}).get("reference", ""))
        patient = str((request.get("subject") or {}).get("reference", ""))
        own = ctx.fhir_user in people and sender == ctx.fhir_user
        if req.access.enabled and ctx.role != "system" and not own:  # a person writes their own, as a participant
            reason = (f"only the participants of the consilium {target} give their opinion, each their own"
                      if ctx.fhir_user not in people else
                      f"a participant of the consilium {target} writes their own opinion, not another's")
            patients = [patient[8:]] if patient.startswith("Patient/") else []
            req.access.refused(AuditTarget(_WRITES[op.method], "Communication", op.stored.id), reason, patients)
            raise FhirError("forbidden", op.entry_prefix() + reason, code="forbidden",
                            expression=f"{where}Communication.sender")
        if str(request.get("status")) in CLOSED:
            raise FhirError("conflict", op.entry_prefix() + f"the consilium {target} is {request.get('status')}: "
                            "it takes no more opinions", code="conflict", expression=f"{where}Communication.basedOn")
        if sender not in people:
            raise FhirError("unprocessable", op.entry_prefix() + f"an opinion on the consilium {target} is sent by "
                            "one of its participants (performer or requester)", code="business-rule",
                            expression=f"{where}Communication.sender")
        if str((communication.get("subject") or {}).get("reference", "")) != patient:
            raise FhirError("unprocessable", op.entry_prefix() + f"an opinion on the consilium {target} is about its "
                            f"patient {patient}", code="business-rule", expression=f"{where}Communication.subject")
