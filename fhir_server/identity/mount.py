"""Mounting the authorization server into the FHIR app (api/app.py calls ``mount``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from fhir_server.config import Settings
from fhir_server.identity.issuer import IdentityConfig
from fhir_server.identity.keys import ensure_keys
from fhir_server.identity.registry import Registry
from fhir_server.identity.routes import AuthRoutes
from fhir_server.identity.server import SmartAuthorizationServer
from fhir_server.identity.signin import PasswordSignIn
from fhir_server.identity.trust import Denylist


def build_routes(settings: Settings, services: Callable[[], Any]) -> AuthRoutes:
    config = IdentityConfig.from_settings(settings)
    registry = Registry(config.database)
    server = SmartAuthorizationServer(config, registry, ensure_keys(config.key_path), Denylist.shared(registry))
    return AuthRoutes(config, registry, server, [PasswordSignIn(registry)], services)


def mount(app: FastAPI, settings: Settings) -> None:
    """Mount the authorization server when the setting asks for it. Call before the FHIR routes: their
    ``/{type}/{id}`` would otherwise answer ``/auth/token``."""
    if not settings.auth_server:
        return
    routes = build_routes(settings, lambda: app.state.services)
    app.mount("/auth", routes.auth_app())
    app.mount("/.well-known", routes.well_known_app())
