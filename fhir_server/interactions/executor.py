"""The write executor: one store unit for a plan of prepared WriteOps (plan.py), shared by single
interactions, batch entries (a plan of one each) and transactions (one plan).

Inside the unit, in the order FHIR R4 http.html §3.1.0.11.2 gives for transactions (DELETE, POST, PUT,
PATCH):

1. conditional criteria are matched over what the caller may see — a hidden match is no match
   (docs/security.md "Hidden means absent"); a PUT or PATCH target the caller may not see is absent;
2. targets are resolved (new ids, conditional create found, update-as-create) and, in a transaction,
   ``urn:uuid:`` fullUrls and conditional references rewritten;
3. every version is stamped and indexed, and its patients computed once for the whole plan (a resource
   about another resource of the plan belongs to its patients: ``search/compartments.py``);
4. everything is written, then every write is judged — the replaced and the new version — over the
   facts as they are after the writes, so a Bundle's own Consents count, and nothing can change
   between the check and the commit. One refusal rolls the whole unit back; it is audited all the same.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from fhir_server.errors import FhirError
from fhir_server.i18n import msg, substitute
from fhir_server.interactions.plan import INTERACTIONS, WriteOp, prefixed
from fhir_server.interactions.references import is_conditional, is_local_urn, rewrite_references, unresolved
from fhir_server.interactions.request import FhirRequest
from fhir_server.interactions.search_access import refuse_indirect
from fhir_server.interactions.write import parse_criteria, put_version, stamp
from fhir_server.jsonio import dumps
from fhir_server.search.compartments import compartment_parts
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.policy import Action, Verdict
from fhir_server.security.session import CONDITIONAL_CANDIDATES, AccessSession, FactsSource, patients_of, too_broad
from fhir_server.security.tx_facts import TxFacts
from fhir_server.storage.protocols import StoredResource, StoreError, TxView

ORDER = ("DELETE", "POST", "PUT", "PATCH")


async def execute(req: FhirRequest, ops: list[WriteOp], *, transaction: bool) -> list[WriteOp]:
    """Run the plan in one unit; the ops carry their results. FhirError for anything refused."""
    access = req.access
    start = Verdict.proceed()
    for op in ops:  # type-level gates first: they depend on the caller only
        start = await access.gate(op.action, op.resource_type,
                                  AuditTarget(INTERACTIONS[op.method], op.resource_type, op.resource_id,
                                              query=op.criteria_text),
                                  instance=op.resource_id is not None)
        if op.criteria is not None:
            try:
                refuse_indirect(op.criteria, start, access.enabled)
            except FhirError as exc:
                raise prefixed(exc, op) from exc
    unit = _Unit(req, ops, transaction=transaction)
    try:
        await access.transaction(unit)
    except StoreError as exc:
        raise FhirError(exc.category, exc.message) from exc
    return ops


class _Unit:
    def __init__(self, req: FhirRequest, ops: list[WriteOp], *, transaction: bool) -> None:
        self.req = req
        self.services = req.services
        self.access: AccessSession = req.access
        self.ops = ops
        self.transaction = transaction
        self.mapping: dict[str, str] = {}  # fullUrl -> Type/id (transaction)
        self.conditional_refs: dict[str, str] = {}
        self.view: TxView | None = None

    def __call__(self, view: TxView) -> None:
        self.view = view
        # change hooks that also take part in the unit as a whole (subscriptions/matching.py): before the
        # writes, and after every write was judged
        unit_hooks = [hook for hook in self.services.change_hooks if hasattr(hook, "unit_end")]
        for hook in unit_hooks:
            hook.unit_begin(view, self.req, self.ops)
        facts = TxFacts(view)  # as before the writes: what the caller may see of existing data
        by_method = {m: [op for op in self.ops if op.method == m] for m in ORDER}
        for op in by_method["DELETE"]:
            self._guard(op, self._delete, view, facts)
        for op in by_method["POST"] + by_method["PUT"]:
            self._guard(op, self._resolve, view, facts)
        for op in by_method["PATCH"]:
            self._guard(op, self._patch_target, view, facts)
        if self.transaction:
            self._check_overlap()
            for op in by_method["POST"] + by_method["PUT"]:
                if op.outcome == "" and op.resource is not None and op.resource_type != "Bundle":
                    # a Bundle stored as an entry (a signed document) keeps its own references untouched
                    self._guard(op, lambda o, v, f: rewrite_references(
                        o.resource, lambda ref: self._resolve_ref(ref, f), f"{o.where}.resource"), view, facts)
        self._write(view, [op for m in ("POST", "PUT", "PATCH") for op in by_method[m] if op.outcome == ""])
        self._authorize(TxFacts(view))
        for hook in unit_hooks:
            hook.unit_end(view, self.req, self.ops)

    @staticmethod
    def _guard(op: WriteOp, step: Any, view: TxView, facts: FactsSource) -> None:
        try:
            step(op, view, facts)
        except FhirError as exc:
            raise prefixed(exc, op) from exc

    # -- targets -------------------------------------------------------------------------------------
    def _visible_matches(self, op: WriteOp, view: TxView, facts: FactsSource) -> list[tuple[str, str]]:
        candidates = view.search_ids(op.criteria, CONDITIONAL_CANDIDATES + 1)
        if len(candidates) > CONDITIONAL_CANDIDATES:
            raise too_broad()
        target = AuditTarget(INTERACTIONS[op.method], op.resource_type, query=op.criteria_text)
        return self.access.visible_in_unit(view, facts, candidates, target)

    def _visible(self, view: TxView, facts: FactsSource, stored: StoredResource | None,
                 signers: frozenset[str] = frozenset()) -> bool:
        """``signers``: of the write replacing ``stored`` (a Consent the patient signed replaces their own)."""
        if stored is None or stored.deleted or stored.data is None:
            return False
        resource = orjson.loads(stored.data)
        return self.access.decide_with(facts, Action.READ, resource, patients_of(stored, resource),
                                       signers=signers).allowed

    def _probe(self, op: WriteOp, stored: StoredResource) -> None:
        """An attempt on a resource the caller may not see: audited with its patients (AC-14)."""
        self.access.refused(AuditTarget(INTERACTIONS[op.method], stored.type, stored.id),
                            "the resource is not visible to the caller", patients_of(stored))

    def _delete(self, op: WriteOp, view: TxView, facts: FactsSource) -> None:
        if op.criteria is not None:
            settings = self.services.settings
            limit = settings.max_conditional_delete if settings.allow_multiple_conditional_delete else 1
            ids = [rid for _, rid in self._visible_matches(op, view, facts)]
            if len(ids) > limit:
                raise FhirError("precondition_failed", msg("conditional.delete_one")
                                if limit == 1 else msg("conditional.delete_many", limit=limit))
        else:
            ids = [op.resource_id or ""]
            op.target = op.resource_id  # its identity counts for overlaps whether or not it exists (§3.1.0.11.2)
        for rid in ids:
            current = view.current(op.resource_type, rid)
            if current is None or current.deleted:
                continue
            if not self._visible(view, facts, current):
                self._probe(op, current)  # hidden means absent: nothing to delete, 204 as for an unknown id
                continue
            op.previous = current  # the last judged and deleted one (several only with multiple deletes)
            op.deleted.append(view.delete(op.resource_type, rid, current.version + 1, "DELETE"))
            if self.services.enforcer is not None:
                self.services.enforcer.facts_changed(op.resource_type, view)
        if op.criteria is not None:
            op.target = ids[0] if len(ids) == 1 else None
        op.outcome = "deleted" if op.deleted else "nothing"

    def _resolve(self, op: WriteOp, view: TxView, facts: FactsSource) -> None:
        if op.method == "POST":
            if op.criteria is not None:
                matches = self._visible_matches(op, view, facts)
                if len(matches) > 1:
                    raise FhirError("precondition_failed", msg("conditional.create_many", count=len(matches)))
                if matches:
                    op.target = matches[0][1]
                    op.stored = view.current(op.resource_type, op.target)
                    op.outcome = "found"  # conditional create found its match: nothing is written
            if op.outcome == "":
                op.target = str(uuid.uuid4())  # the server assigns the id; one in the body is ignored
        else:
            self._resolve_put(op, view, facts)
        if op.full_url and op.target:
            if op.full_url in self.mapping:
                raise FhirError("invalid", f"fullUrl {op.full_url!r} appears twice", expression=f"{op.where}.fullUrl")
            self.mapping[op.full_url] = f"{op.resource_type}/{op.target}"

    def _resolve_put(self, op: WriteOp, view: TxView, facts: FactsSource) -> None:
        resource = op.resource or {}
        if op.criteria is not None:
            matches = self._visible_matches(op, view, facts)
            if len(matches) > 1:
                raise FhirError("precondition_failed", msg("conditional.update_many", count=len(matches)))
            body_id = resource.get("id")
            if matches:
                op.target = matches[0][1]
                if body_id is not None and body_id != op.target:
                    raise FhirError("invalid", f"body id {body_id!r} differs from the matched resource "
                                    f"{op.target!r}", expression="id")
                op.resource = {**resource, "id": op.target}
            elif isinstance(body_id, str):
                op.target = body_id  # no match, id given: an update as create (R4 http.html §3.1.0.4.3)
            else:
                op.target = str(uuid.uuid4())
                op.resource = {**resource, "id": op.target}
                op.previous = None
                return
        else:
            op.target = op.resource_id
        current = view.current(op.resource_type, op.target or "")
        if current is not None and not current.deleted and self._visible(view, facts, current, op.signers):
            if op.if_match is not None and current.version != op.if_match:
                raise FhirError("precondition_failed", msg("version.if_match", expected=op.if_match,
                                                           type=op.resource_type, id=op.target,
                                                           current=current.version))
            op.previous = current
            return
        # No version the caller may see: this is a create with the client's id.
        if op.if_match is not None:
            raise FhirError("precondition_failed", msg("version.if_match_none", expected=op.if_match,
                                                       type=op.resource_type, id=op.target))
        if current is not None and not self._create_with_id_allowed(view, facts, current):
            if not current.deleted:
                self._probe(op, current)
            # Hidden means absent: answered as a create with this id would be (``_write``), never stored.
            op.phantom = True
            op.client_id = True
            return
        op.previous = current if current is not None and current.deleted else None
        op.client_id = current is None  # checked once its patients are known (``_write``)

    def _create_with_id_allowed(self, view: TxView, facts: FactsSource, current: StoredResource) -> bool:
        """The id is in use by a version the caller may not see. In open mode it is simply updated. Under
        the policy, reusing it is allowed only for a deletion the caller could see (re-creating it): an
        answer that differed from "the id is free" would reveal that hidden data exists."""
        if not self.access.enabled:
            return True
        if not current.deleted:
            return False
        prior = view.version(current.type, current.id, current.version - 1) if current.version > 1 else None
        return self._visible(view, facts, prior)

    def _patch_target(self, op: WriteOp, view: TxView, facts: FactsSource) -> None:
        base = op.base
        assert base is not None and op.target is not None
        current = view.current(op.resource_type, op.target)
        if current is None or current.version != base.version or current.deleted:
            category = "precondition_failed" if op.if_match is not None else "conflict"
            raise FhirError(category, msg("version.patch_raced", type=op.resource_type, id=op.target))
        op.previous = current

    def _check_overlap(self) -> None:
        seen: dict[tuple[str, str], int] = {}
        for op in self.ops:
            if op.target is None or op.outcome == "found":
                continue
            key = (op.resource_type, op.target)
            if key in seen:
                raise FhirError("invalid", f"entries {seen[key]} and {op.index} both change {key[0]}/{key[1]}",
                                expression=f"{op.where}.request")
            seen[key] = op.index if op.index is not None else -1

    # -- references (transactions) --------------------------------------------------------------------
    def _resolve_ref(self, ref: str, facts: FactsSource) -> str | None:
        if ref in self.mapping:
            return self.mapping[ref]
        if is_local_urn(ref):
            raise unresolved(ref, "Bundle.entry.resource")
        if is_conditional(ref):
            return self._conditional_ref(ref, facts)
        return None

    def _conditional_ref(self, ref: str, facts: FactsSource) -> str:
        """A conditional reference resolves over what the caller may see, like conditional criteria."""
        if ref not in self.conditional_refs:
            rtype, _, criteria_text = ref.partition("?")
            criteria = parse_criteria(self.services, rtype, criteria_text)
            refuse_indirect(criteria, Verdict.proceed(), self.access.enabled)
            assert self.view is not None
            op = WriteOp("POST", rtype, criteria=criteria, criteria_text=criteria_text)
            matches = self._visible_matches(op, self.view, facts)
            if len(matches) != 1:
                raise FhirError("precondition_failed", f"conditional reference {ref!r} matched {len(matches)} "
                                "resources; it must match exactly one", expression="Bundle.entry.resource")
            self.conditional_refs[ref] = f"{matches[0][0]}/{matches[0][1]}"
        return self.conditional_refs[ref]

    # -- writing --------------------------------------------------------------------------------------
    def _write(self, view: TxView, ops: list[WriteOp]) -> None:
        stamped: list[tuple[WriteOp, dict[str, Any], Any, bytes]] = []
        for op in ops:
            version = 1 if op.previous is None else op.previous.version + 1
            resource = op.resource or {}
            full, rows = stamp(view, self.services, resource, op.resource_type, op.target or "", version)
            stamped.append((op, full, rows, dumps(full)))  # serialised once: for the compartments and the store
        memberships = _memberships(view, stamped)
        strict = self.access.enabled and self.services.settings.update_as_create != "all"
        for (op, full, rows, data), patients in zip(stamped, memberships, strict=True):
            if op.client_id and strict and patients:
                raise prefixed(update_create_refused(op.resource_type), op)
            if op.phantom:
                self._phantom(op, full, patients)
            try:
                op.stored = put_version(view, self.services, full, rows, patients, op.method, data=data)
            except FhirError as exc:
                raise prefixed(exc, op) from exc
            op.outcome = "updated" if op.previous is not None and not op.previous.deleted else "created"

    def _phantom(self, op: WriteOp, full: dict[str, Any], patients: set[str]) -> None:
        """A PUT to an id held by data the caller may not see: the answer a create with a free id would
        get if the caller may not create this content (the same refusal), else 405 — the one residual
        difference, for callers who may create non-patient data with their own ids (docs/security.md)."""
        assert self.view is not None
        judged = self.access.decide_with(TxFacts(self.view), Action.CREATE, full, patients, signers=op.signers)
        if not judged.allowed:
            raise FhirError("forbidden", _denied(op, self._unassigned(judged.verdict.reason)),
                            code="forbidden", expression=op.where or None)
        raise prefixed(update_create_refused(op.resource_type), op)

    # -- the decision ---------------------------------------------------------------------------------
    def _authorize(self, facts: FactsSource) -> None:
        """Every write judged on the version it replaced and the one it wrote; then their audit."""
        records: list[tuple[AuditTarget, Verdict, frozenset[str]]] = []
        for op in self.ops:
            if op.outcome == "found":
                assert op.stored is not None
                judged = self._judge(op, facts, Action.READ, op.stored)
                records.append((AuditTarget("read", op.stored.type, op.stored.id, str(op.stored.version)),
                                judged[0], judged[1]))
                continue
            verdict: Verdict | None = None
            patients: frozenset[str] = frozenset()
            for version in (op.previous, op.stored):
                if version is None or version.data is None:
                    continue
                verdict, ids = self._judge(op, facts, op.action, version)
                patients |= ids
            written = op.deleted[-1] if op.deleted else op.stored
            if verdict is not None and written is not None:
                records.append((AuditTarget(INTERACTIONS[op.method], written.type, written.id,
                                            str(written.version)), verdict, patients))
        for target, verdict, patients in records:
            self.access.record(target, verdict, patients)

    def _judge(self, op: WriteOp, facts: FactsSource, action: Action, version: StoredResource
               ) -> tuple[Verdict, frozenset[str]]:
        resource = orjson.loads(version.data or b"{}")
        judged = self.access.decide_with(facts, action, resource, patients_of(version, resource), signers=op.signers)
        if judged.allowed or not self.access.enabled:
            return judged.verdict, judged.patients
        target = AuditTarget(INTERACTIONS[op.method], version.type, version.id, str(version.version))
        self.access.refused(target, judged.verdict.reason, judged.patients)
        reason = self._unassigned(judged.verdict.reason)
        raise FhirError("forbidden", _denied(op, reason), code="forbidden",
                        expression=op.where or None)

    def _unassigned(self, text: str) -> str:
        """A refusal names a resource of this plan by its fullUrl, never by an id the server assigned in
        the unit that is being rolled back (issue 13: such ids exist nowhere afterwards)."""
        for op in self.ops:
            if op.target and op.outcome == "created" and (op.method == "POST" or op.resource_id is None):
                named = msg("bundle.named_entry", type=op.resource_type, full_url=op.full_url, index=op.index) \
                    if op.full_url and op.index is not None else msg("bundle.new_resource", type=op.resource_type)
                text = substitute(text, f"{op.resource_type}/{op.target}", named)
        return text


def _memberships(view: TxView, stamped: list[tuple[WriteOp, dict[str, Any], Any, bytes]]) -> list[set[str]]:
    """The patients of every version the plan writes, computed together: a resource of the plan that
    references another one (a Provenance of the Bundle's Observations, a Condition of its Encounter) is in
    that one's compartments, whatever the order of the entries. A fixed point over the plan; resources
    outside it resolve through the view.

    Each resource is walked once (``compartment_parts``): the passes of the fixed point only join sets,
    and a stored resource referenced by many (the Encounter of a hundred Observations, a Practitioner) is
    looked up once per unit. Nothing is written before this returns, so those lookups cannot go stale."""
    keys = [(full["resourceType"], full["id"]) for _, full, _, _ in stamped]
    local: dict[tuple[str, str], set[str]] = {key: set() for key in keys}
    outside: dict[tuple[str, str], list[str]] = {}
    result: list[set[str]] = []
    pending: list[tuple[int, list[tuple[str, str]]]] = []  # resources whose patients depend on the plan's
    for i, (_, full, rows, data) in enumerate(stamped):
        ids, others = compartment_parts(full, rows, data)
        in_plan = []
        for target in others:
            if target in local:
                in_plan.append(target)
                continue
            found = outside.get(target)
            if found is None:
                text = view.patients(*target)
                found = outside[target] = text.split() if text else []
            ids.update(found)
        ids.discard("")
        result.append(ids)
        if in_plan:
            pending.append((i, in_plan))
        else:
            local[keys[i]] = ids
    for i, _targets in pending:
        local[keys[i]] = result[i]
    for _ in range(len(pending) + 1):
        changed = False
        for i, in_plan in pending:
            patients = result[i]
            before = len(patients)
            for target in in_plan:
                patients |= local[target]
            patients.discard("")
            if len(patients) != before:
                changed = True
        if not changed:
            break
    return [set(patients) for patients in result]


def update_create_refused(resource_type: str) -> FhirError:
    """405 (R4 http.html §3.1.0.4: "the resource did not exist prior to the update, and the server does
    not allow client defined ids"). Under the policy patient data is never created with a client-chosen
    id (setting ``update_as_create``): the answer is then the same whether the id is free or taken by
    data the caller may not see."""
    return FhirError("method_not_allowed", msg("write.client_id_refused", type=resource_type), code="not-supported")


def _denied(op: WriteOp, reason: str) -> str:
    """The refusal of one write, naming its Bundle entry when it has one."""
    if op.index is None:
        return msg("access.denied", reason=reason)
    return msg("access.denied_entry", index=op.index, reason=reason)

