"""The discovery documents: SMART App Launch 2.2 ``/.well-known/smart-configuration`` (conformance.html:
``token_endpoint``, ``grant_types_supported``, ``capabilities`` and ``code_challenge_methods_supported`` are
required, ``issuer`` and ``jwks_uri`` with ``sso-openid-connect``, ``authorization_endpoint`` with a launch
capability) and OpenID Connect Discovery 1.0 ``openid-configuration``."""

from __future__ import annotations

from typing import Any

from fhir_server.identity.client_auth import ASSERTION_ALGORITHMS
from fhir_server.identity.issuer import IdentityConfig
from fhir_server.identity.keys import ALGORITHM

GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials"]
AUTH_METHODS = ["private_key_jwt", "none"]
SCOPES = ["openid", "fhirUser", "launch", "launch/patient", "offline_access", "online_access",
          "patient/*.cruds", "user/*.cruds", "system/*.cruds", "patient/*.rs", "user/*.rs", "system/*.rs",
          "patient/*.read", "user/*.read", "system/*.read"]
# SMART App Launch 2.2 scopes-and-launch-context.html#finer-grained-resource-constraints-using-search-parameters:
# granular scopes are open-ended (any search parameter the policy can enforce), so discovery lists the
# category-restricted ones US Core and Inferno's granular-scope groups request; the policy honours any other
# enforceable one too and refuses the rest with its reason at /authorize.
_OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
GRANULAR_SCOPES = [
    *(f"patient/Observation.rs?category={_OBS_CATEGORY}|{code}"
      for code in ("laboratory", "vital-signs", "social-history", "survey", "imaging")),
    *(f"patient/Condition.rs?category={_CONDITION_CATEGORY}|{code}"
      for code in ("problem-list-item", "encounter-diagnosis")),
]
SCOPES = [*SCOPES, *GRANULAR_SCOPES]
CAPABILITIES = ["launch-ehr", "launch-standalone", "authorize-post", "client-public",
                "client-confidential-asymmetric", "context-ehr-patient", "context-standalone-patient",
                "sso-openid-connect", "permission-offline", "permission-online", "permission-patient",
                "permission-user", "permission-v1", "permission-v2"]


def endpoints(config: IdentityConfig) -> dict[str, str]:
    issuer = config.issuer
    return {"issuer": issuer, "jwks_uri": f"{issuer}/jwks", "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": config.token_endpoint, "introspection_endpoint": f"{issuer}/introspect",
            "revocation_endpoint": f"{issuer}/revoke"}


def smart_configuration(config: IdentityConfig) -> dict[str, Any]:
    return {
        **endpoints(config),
        "grant_types_supported": GRANT_TYPES,
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": CAPABILITIES,
    }


def openid_configuration(config: IdentityConfig) -> dict[str, Any]:
    return {
        **endpoints(config),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "scopes_supported": SCOPES,
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "fhirUser"],
        "grant_types_supported": GRANT_TYPES,
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "code_challenge_methods_supported": ["S256"],
    }
