"""Security: authentication, the access policy (consent engine, break-glass), and audit.

Subpackages: ``auth`` (tokens -> RequestContext, SMART scopes, dev tokens), ``policy`` (the
decision point), ``audit`` (BALP events, hash chain, access log). docs/security.md explains the
rules and how the server calls them.
"""

from fhir_server.security.context import RequestContext

__all__ = ["RequestContext"]
