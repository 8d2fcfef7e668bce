"""The request every interaction and operation runs in: the services, and the caller's access session.

The API builds one ``FhirRequest`` per HTTP request after authentication (``api/common.py``); a batch
or transaction hands the same one to each of its entries. Its ``access`` is never optional: data is
reached only through it (security/session.py), so no interaction can run without the policy and the
audit. Open mode is a session without a policy, chosen by configuration, not by a code path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fhir_server.config import Settings
from fhir_server.i18n import Language, choose
from fhir_server.interactions.base import Prefer, Services
from fhir_server.security.context import RequestContext
from fhir_server.security.session import AccessSession


@dataclass(frozen=True, slots=True)
class FhirRequest:
    services: Services
    access: AccessSession
    base_url: str = ""
    prefer: Prefer = field(default_factory=Prefer)
    pretty: bool = False
    #: the request's Accept-Language header, parsed only if an answer inside a 200 needs a text (a batch
    #: entry's OperationOutcome; docs/languages.md)
    accept_language: str | None = None

    @property
    def ctx(self) -> RequestContext:
        return self.access.ctx

    @property
    def settings(self) -> Settings:
        return self.services.settings

    def fork(self) -> FhirRequest:
        """The same caller with a session of its own: each batch entry records (and commits, or loses
        with its rolled-back unit) only what it did itself."""
        return FhirRequest(self.services, self.services.enforcer.session(self.ctx), self.base_url, self.prefer,
                           self.pretty, self.accept_language)

    def language(self) -> Language:
        """The language for a human text inside the answer (the default_language setting without a header)."""
        return choose(self.accept_language, self.settings.default_language)


def open_request(services: Services, ctx: RequestContext, *, base_url: str = "", prefer: Prefer | None = None,
                 pretty: bool = False, accept_language: str | None = None) -> FhirRequest:
    """A request for an authenticated caller (or the server's own context for its start-up work)."""
    return FhirRequest(services, services.enforcer.session(ctx), base_url, prefer or Prefer(), pretty,
                       accept_language)
