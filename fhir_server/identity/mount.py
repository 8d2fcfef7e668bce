"""Mounting the authorization server into the FHIR app (api/app.py calls ``mount``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from fhir_server.config import Settings
from fhir_server.identity.eds_signin import EdsSignIn
from fhir_server.identity.federation import OidcFederation, ProviderConfig
from fhir_server.identity.issuer import IdentityConfig
from fhir_server.identity.keys import ensure_keys
from fhir_server.identity.registry import Registry
from fhir_server.identity.routes import AuthRoutes
from fhir_server.identity.server import SmartAuthorizationServer
from fhir_server.identity.signin import PasswordSignIn, SignInMethod
from fhir_server.identity.trust import Denylist
from signing import RevocationPolicy, TrustStore


def build_routes(settings: Settings, services: Callable[[], Any]) -> AuthRoutes:
    config = IdentityConfig.from_settings(settings)
    registry = Registry(config.database)
    server = SmartAuthorizationServer(config, registry, ensure_keys(config.key_path), Denylist.shared(registry))
    methods: list[SignInMethod] = [PasswordSignIn(registry)]
    if settings.auth_eds_signin:
        trust_dir = settings.auth_eds_trust_dir or settings.trust_dir
        if trust_dir is None or not trust_dir.is_dir():
            raise ValueError("KZFHIR_AUTH_EDS_SIGNIN needs a trust store: KZFHIR_AUTH_EDS_TRUST_DIR or "
                             "KZFHIR_TRUST_DIR, a folder of CA certificates and CRLs")
        mode = settings.auth_eds_revocation_mode
        if mode not in ("off", "soft", "hard"):
            raise ValueError(f"KZFHIR_AUTH_EDS_REVOCATION_MODE must be off, soft or hard, not {mode!r}")
        policy = RevocationPolicy(mode=mode, ocsp_url=settings.ocsp_url)  # type: ignore[arg-type]
        methods.append(EdsSignIn(registry, config.issuer, TrustStore.from_directory(trust_dir, policy)))
    if settings.auth_oidc_issuer:
        methods.append(OidcFederation(provider_config(settings, config), registry))
    return AuthRoutes(config, registry, server, methods, services)


def provider_config(settings: Settings, config: IdentityConfig) -> ProviderConfig:
    issuer = settings.auth_oidc_issuer or ""
    secret = settings.auth_oidc_client_secret.get_secret_value() if settings.auth_oidc_client_secret else ""
    if not settings.auth_oidc_client_id or not secret:
        raise ValueError("KZFHIR_AUTH_OIDC_ISSUER needs KZFHIR_AUTH_OIDC_CLIENT_ID and KZFHIR_AUTH_OIDC_CLIENT_SECRET "
                         "(this server's registration at the identity provider)")
    if settings.env == "production" and not issuer.startswith("https://"):
        raise ValueError(f"KZFHIR_AUTH_OIDC_ISSUER must be an https URL in production, not {issuer}")
    return ProviderConfig(issuer=issuer, client_id=settings.auth_oidc_client_id, client_secret=secret,
                          iin_claim=settings.auth_oidc_iin_claim, title=settings.auth_oidc_title,
                          redirect_uri=f"{config.issuer}/federation/callback")


def mount(app: FastAPI, settings: Settings) -> None:
    """Mount the authorization server when the setting asks for it. Call before the FHIR routes: their
    ``/{type}/{id}`` would otherwise answer ``/auth/token``."""
    if not settings.auth_server:
        return
    routes = build_routes(settings, lambda: app.state.services)
    app.mount("/auth", routes.auth_app())
    app.mount("/.well-known", routes.well_known_app())
