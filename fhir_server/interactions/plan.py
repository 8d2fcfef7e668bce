"""Writes as data (issue 10/11): every create, update, patch and delete — single or inside a Bundle,
plain or conditional — is a :class:`WriteOp`, prepared outside the write unit and executed by one
executor (``executor.py``).

Preparing does everything that needs no serialised view of the store, so it never runs on the single
writer: the body is checked and validated (off the event loop for a signed Bundle, whose signature
check may wait on OCSP), conditional criteria are parsed, and a patch is applied to the version the
caller may see and the result validated. The executor then only resolves, writes and decides.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from fhir_server.errors import FhirError
from fhir_server.i18n import Message, msg
from fhir_server.interactions.base import check_id, check_type, parse_etag
from fhir_server.interactions.request import FhirRequest
from fhir_server.interactions.write import parse_criteria, require_resource, validate
from fhir_server.jsonio import reload
from fhir_server.security.policy import Action
from fhir_server.storage.protocols import StoredResource
from fhir_server.telemed.attachments import carries_data
from fhir_server.telemed.data_source import tag_source

Method = Literal["POST", "PUT", "PATCH", "DELETE"]
ACTIONS: dict[str, Action] = {"POST": Action.CREATE, "PUT": Action.UPDATE, "PATCH": Action.PATCH,
                              "DELETE": Action.DELETE}
INTERACTIONS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass(slots=True)
class WriteOp:
    """One write of a plan, and (after the executor ran) what it did."""

    method: Method
    resource_type: str
    resource_id: str | None = None  # the URL's id; None for a create or a conditional form
    resource: dict[str, Any] | None = None  # validated body (POST/PUT) or patched result (PATCH)
    criteria: Any = None  # parsed search: If-None-Exist (POST) or the conditional URL (PUT/PATCH/DELETE)
    criteria_text: str | None = None
    if_match: int | None = None
    full_url: str | None = None
    index: int | None = None  # Bundle.entry index (None for a single interaction)
    base: StoredResource | None = None  # PATCH: the version the patch was applied to
    # -- results ---------------------------------------------------------------------------------
    target: str | None = None
    outcome: Literal["", "created", "updated", "found", "deleted", "nothing"] = ""
    stored: StoredResource | None = None
    previous: StoredResource | None = None
    deleted: list[StoredResource] = field(default_factory=list)
    client_id: bool = False  # a PUT that creates the resource with the client's id
    phantom: bool = False  # a PUT to an id held by data the caller may not see: answered, never stored
    signers: frozenset[str] = frozenset()  # IINs of the verified EDS on a Consent's signed form (AC-08)

    @property
    def action(self) -> Action:
        return ACTIONS[self.method]

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}]" if self.index is not None else ""

    def entry_prefix(self) -> str:
        return f"entry {self.index}: " if self.index is not None else ""


def prefixed(exc: FhirError, op: WriteOp) -> FhirError:
    """The error with messages and expressions that point into the Bundle (``Bundle.entry[3].resource.x``)."""
    if op.index is None:
        return exc
    rtype = op.resource_type
    issues = []
    for issue in exc.issues:
        expression = issue.expression
        if expression and expression.startswith(rtype):
            expression = f"{op.where}.resource{expression[len(rtype):]}"
        elif expression and not expression.startswith("Bundle"):
            expression = f"{op.where}.request"
        elif not expression:
            expression = op.where
        text = issue.diagnostics if issue.diagnostics.startswith("entry ") else _in_entry(op.index, issue.diagnostics)
        issues.append(replace(issue, expression=expression, diagnostics=text))
    message = exc.message if exc.message.startswith("entry ") else _in_entry(op.index, exc.message)
    out = FhirError(exc.category, message, issues=issues, headers=exc.headers)
    return out


def _in_entry(index: int, text: str) -> str:
    """``entry 3: text``; in the caller's language when ``text`` has a catalogue key (validation findings
    without one stay English as a whole)."""
    return msg("bundle.entry", index=index, text=text) if isinstance(text, Message) else f"entry {index}: {text}"


async def _validated(req: FhirRequest, resource: dict[str, Any], mode: str, op: WriteOp) -> None:
    """Validation before the write (architecture.md: never on the writer). A signed Bundle goes to a worker
    thread: verifying its EDS may wait on an OCSP responder or an external GOST verifier. A Consent's signed
    form is verified here too; the policy reads who signed it (AC-08). Collected data are first tagged with
    their source (AC-05: telemed/data_source.py)."""
    if req.access.enabled:
        tag_source(req.access.ctx, resource)
    if (resource.get("resourceType") == "Bundle" and "signature" in resource) or (
            req.services.settings.attachment_scanner and carries_data(resource)):  # a virus scan waits on clamd
        await asyncio.to_thread(validate, req.services, resource, mode=mode)
    else:
        validate(req.services, resource, mode=mode)
    if resource.get("resourceType") == "Consent" and resource.get("sourceAttachment") is not None:
        from fhir_server.signatures.consent_evidence import consent_signers

        op.signers = await consent_signers(req.services, resource)


def _criteria(req: FhirRequest, resource_type: str, text: str | None) -> Any:
    return parse_criteria(req.services, resource_type, text) if text else None


async def create_op(req: FhirRequest, resource_type: str, body: Any, *, if_none_exist: str | None = None,
                    full_url: str | None = None, index: int | None = None) -> WriteOp:
    check_type(req.services, resource_type)
    op = WriteOp("POST", resource_type, full_url=full_url, index=index)
    try:
        resource = require_resource(body, resource_type)
        await _validated(req, resource, "create", op)
        op.resource = resource
        op.criteria_text = if_none_exist
        op.criteria = _criteria(req, resource_type, if_none_exist)
    except FhirError as exc:
        raise prefixed(exc, op) from exc
    return op


async def update_op(req: FhirRequest, resource_type: str, resource_id: str | None, body: Any, *,
                    criteria: str | None = None, if_match: str | None = None, full_url: str | None = None,
                    index: int | None = None) -> WriteOp:
    check_type(req.services, resource_type)
    op = WriteOp("PUT", resource_type, resource_id, full_url=full_url, index=index)
    try:
        resource = require_resource(body, resource_type)
        if resource_id is not None:
            check_id(resource_id)
            if "id" not in resource:
                raise FhirError("invalid", msg("write.update_needs_id"), code="required",
                                expression="id")
            if resource["id"] != resource_id:
                raise FhirError("invalid", msg("write.id_mismatch", body_id=resource["id"], id=resource_id),
                                code="invalid", expression="id")
        elif criteria is None:
            raise FhirError("invalid", msg("write.needs_id_or_criteria", method="PUT"), code="required")
        elif "id" in resource:
            check_id(str(resource["id"]))
        await _validated(req, resource, "update", op)
        op.resource = resource
        op.criteria_text = criteria
        op.criteria = _criteria(req, resource_type, criteria) if resource_id is None else None
        op.if_match = parse_etag(if_match, "If-Match")
    except FhirError as exc:
        raise prefixed(exc, op) from exc
    return op


async def delete_op(req: FhirRequest, resource_type: str, resource_id: str | None, *,
                    criteria: str | None = None, index: int | None = None) -> WriteOp:
    check_type(req.services, resource_type)
    op = WriteOp("DELETE", resource_type, resource_id, index=index)
    try:
        if resource_id is not None:
            check_id(resource_id)
        elif criteria is None:
            raise FhirError("invalid", msg("write.needs_id_or_criteria", method="DELETE"), code="required")
        op.criteria_text = criteria
        op.criteria = _criteria(req, resource_type, criteria) if resource_id is None else None
    except FhirError as exc:
        raise prefixed(exc, op) from exc
    return op


async def patch_op(req: FhirRequest, resource_type: str, resource_id: str | None, patch: Any, *,
                   criteria: str | None = None, if_match: str | None = None, full_url: str | None = None,
                   index: int | None = None) -> WriteOp:
    """A patch is applied here, to the current version the caller may see (an unknown or hidden one is
    404 alike; a conditional patch matches only visible resources), and the result validated; the
    executor stores it only if that version is still current (409, or 412 under If-Match)."""
    check_type(req.services, resource_type)
    op = WriteOp("PATCH", resource_type, resource_id, full_url=full_url, index=index)
    try:
        op.if_match = parse_etag(if_match, "If-Match")
        if resource_id is None:
            if criteria is None:
                raise FhirError("invalid", msg("write.needs_id_or_criteria", method="PATCH"), code="required")
            op.criteria_text = criteria
            op.criteria = _criteria(req, resource_type, criteria)
            matches = await req.access.visible_matches(op.criteria, op.action)
            if len(matches) != 1:
                raise FhirError("precondition_failed" if matches else "not_found",
                                msg("conditional.patch_matches", count=len(matches)))
            resource_id = matches[0]
        check_id(resource_id)
        op.target = resource_id
        current = await req.access.read(resource_type, resource_id, action=Action.PATCH, interaction="patch",
                                        record=False)
        if op.if_match is not None and current.version != op.if_match:
            raise FhirError("precondition_failed",
                            msg("version.if_match_patch", expected=op.if_match, current=current.version))
        patched = apply_any_patch(reload(current.data or b"{}"), patch)
        if not isinstance(patched, dict) or patched.get("resourceType") != resource_type \
                or patched.get("id") != resource_id:
            raise FhirError("unprocessable", msg("patch.changes_identity"), code="processing")
        await _validated(req, patched, "update", op)
        op.resource, op.base = patched, current
    except FhirError as exc:
        raise prefixed(exc, op) from exc
    return op


def apply_any_patch(resource: dict[str, Any], patch: Any) -> Any:
    """The patch document applied to the resource (FHIR R4 http.html §3.1.0.6): a FHIRPath Patch when it
    is a Parameters resource (fhirpatch.html), else a JSON Patch (RFC 6902: an array of operations)."""
    if isinstance(patch, dict):
        if patch.get("resourceType") != "Parameters":
            raise FhirError("invalid", "a PATCH body is a JSON Patch (an array) or a FHIRPath Patch (a Parameters "
                            "resource)", code="structure")
        from fhir_server.interactions.fhirpath_patch import apply_fhirpath_patch

        return apply_fhirpath_patch(resource, patch)
    from fhir_server.interactions.jsonpatch import apply_patch

    return apply_patch(resource, patch)
