"""Whose a Subscription is (issue 15 §4): the identity of the request that created it.

Two records, both written by the server in the unit of the create:

* the owner key (token subject and organisation BIN) as an extension of the stored Subscription
  (``security/policy/owned.py``): the policy shows and changes the Subscription to its owner (and an
  administrator) only. A client's own value is replaced; an update keeps the first owner;
* the owner's access identity (role, fhirUser, organisation, scopes, purpose of use) in the store's
  job records (kind ``subscription``), never shown over REST: every notification is judged under it.
  Break-glass and a legal basis are properties of one request, not of a standing subscription: they are
  not kept, so a notification never carries what only an emergency could read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from fhir_server.security.context import RequestContext
from fhir_server.security.policy.owned import OWNER_EXTENSION, owner_key


@dataclass(frozen=True, slots=True)
class Owner:
    subject: str | None = None
    fhir_user: str | None = None
    role: str | None = None
    organization_bin: str | None = None
    scopes: tuple[str, ...] = ()
    on_behalf_of: str | None = None
    purpose_of_use: str | None = None
    launch_patient: str | None = None
    client_id: str | None = None

    @classmethod
    def of(cls, ctx: RequestContext) -> Owner:
        return cls(ctx.subject, ctx.fhir_user, ctx.role, ctx.organization_bin, tuple(ctx.scopes), ctx.on_behalf_of,
                   ctx.purpose_of_use, ctx.launch_patient, ctx.client_id)

    @classmethod
    def load(cls, data: dict[str, Any]) -> Owner:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["scopes"] = tuple(known.get("scopes") or ())
        return cls(**known)

    def dump(self) -> dict[str, Any]:
        out = asdict(self)
        out["scopes"] = list(self.scopes)
        return out

    def context(self) -> RequestContext:
        """A fresh request context for judging one notification as the owner."""
        return RequestContext(subject=self.subject, fhir_user=self.fhir_user, role=self.role,
                              organization_bin=self.organization_bin, scopes=self.scopes,
                              on_behalf_of=self.on_behalf_of, purpose_of_use=self.purpose_of_use,
                              launch_patient=self.launch_patient, client_id=self.client_id, authenticated=True)

    @property
    def key(self) -> str:
        return owner_key(self.context())


def with_owner(resource: dict[str, Any], key: str) -> dict[str, Any]:
    """The resource with exactly one owner extension, ``key``."""
    others = [e for e in resource.get("extension", []) or []
              if not (isinstance(e, dict) and e.get("url") == OWNER_EXTENSION)]
    return {**resource, "extension": [*others, {"url": OWNER_EXTENSION, "valueString": key}]}
