"""The cross-border guard (AC-23): personal data leave the server only for hosts the operator allows.

Law: transfer abroad only to states that protect personal data, otherwise only on the law's extra conditions;
data stay in the country by default. The server cannot know where a host is, so the operator lists the
destinations that are allowed (``KZFHIR_EGRESS_ALLOWED_HOSTS``): host names (``nehp.gov.kz``), domain suffixes
(``*.kz``), IP networks (``10.0.0.0/8``), or ``*`` for any. The default keeps data in the country: ``.kz``
and ``.қаз`` names, loopback and private networks (the operator's own infrastructure). Names are compared as
written, never resolved (a DNS answer checked now could differ when the connection is made).

Where it is enforced:

* every destination the operator configures — NEHP, payment system, notification webhook, SMTP relay,
  telecom service, identity provider's JWKS, the federated OpenID provider, OCSP responder, external
  signature verifier — is checked when the server starts: one outside the list refuses the start (one
  line, like other configuration errors);
* destinations callers give at run time — a Subscription's ``channel.endpoint`` — are checked on every write
  of it (422, audited as a failed attempt in the caller's request).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fhir_server.config import Settings
from fhir_server.errors import FhirError

#: settings naming an outbound destination
CONFIGURED = ("nehp_url", "payment_url", "notify_webhook_url", "egov_cabinet_url",
              "smtp_host", "video_service_url", "jwks_url",
              "ocsp_url", "external_verifier_url", "attachment_scanner", "auth_oidc_issuer")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class EgressGuard:
    hosts: frozenset[str]
    suffixes: tuple[str, ...]
    networks: tuple[Network, ...]
    anywhere: bool = False

    @classmethod
    def parse(cls, text: str) -> EgressGuard:
        hosts: set[str] = set()
        suffixes: list[str] = []
        networks: list[Network] = []
        anywhere = False
        for item in (part.strip().lower() for part in text.split(",")):
            if not item:
                continue
            if item == "*":
                anywhere = True
            elif item.startswith("*."):
                suffixes.append(item[1:])
            elif "/" in item:
                networks.append(ipaddress.ip_network(item, strict=False))
            else:
                hosts.add(item.strip("[]"))
        return cls(frozenset(hosts), tuple(suffixes), tuple(networks), anywhere)

    def allows_host(self, host: str | None) -> bool:
        if not host:
            return False
        name = host.strip().strip("[]").rstrip(".").lower()
        if self.anywhere or name in self.hosts:
            return True
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return any(name.endswith(suffix) for suffix in self.suffixes)
        return any(address in network for network in self.networks)

    def allows_url(self, url: str) -> bool:
        return self.allows_host(urlsplit(url).hostname if "://" in url else url.split(":", 1)[0])


def guard_for(settings: Settings) -> EgressGuard:
    return EgressGuard.parse(settings.egress_allowed_hosts)


def check_configured(settings: Settings) -> None:
    """Refuse to start with a configured destination outside the allowed hosts."""
    guard = guard_for(settings)
    for name in CONFIGURED:
        value = getattr(settings, name, None)
        if value and not guard.allows_url(str(value)):
            host = urlsplit(str(value)).hostname if "://" in str(value) else str(value)
            raise ValueError(f"KZFHIR_{name.upper()} points at {host!r}, outside KZFHIR_EGRESS_ALLOWED_HOSTS: personal "
                             "data may leave the country only for allowed destinations (AC-23)")


def endpoint_rule(settings: Settings) -> Any:
    """A ``Services.change_hooks`` entry run as a Subscription version is stored (after the Subscription rules
    of fhir_server/subscriptions, so their refusals come first): its endpoint is an allowed destination."""
    guard = guard_for(settings)

    def check(view: Any, services: Any, previous: bytes | None, resource: dict[str, Any], stored: Any) -> None:
        if resource.get("resourceType") != "Subscription":
            return
        endpoint = (resource.get("channel") or {}).get("endpoint")
        # http(s) only: other schemes are refused by the Subscription rules themselves (fhir_server/subscriptions)
        if isinstance(endpoint, str) and endpoint.lower().startswith(("http://", "https://")) and \
                not guard.allows_url(endpoint):
            raise FhirError("unprocessable", f"notifications to {urlsplit(endpoint).hostname!r} would take personal "
                            "data outside the allowed destinations (KZFHIR_EGRESS_ALLOWED_HOSTS, AC-23)",
                            code="security", expression="Subscription.channel.endpoint")

    return check


def install(services: Any) -> None:
    check_configured(services.settings)
    services.change_hooks.append(endpoint_rule(services.settings))
