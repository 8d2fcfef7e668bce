"""The application, assembled in one function (house style §2)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.requests import ClientDisconnect

from fhir_server import __version__, jsonio
from fhir_server.api import errors, openapi
from fhir_server.api.fastpath import FastReads
from fhir_server.api.middleware import Hardened, client_gone
from fhir_server.api.operator import Operator
from fhir_server.api.routes import bulk, bulk_import, instance, operations, search, system
from fhir_server.api.routes import type as type_routes
from fhir_server.backends import resource_matcher, store_for, watch_changes
from fhir_server.config import Settings
from fhir_server.definitions import get_definitions
from fhir_server.definitions.publish import publish
from fhir_server.egress import install as install_egress
from fhir_server.fhirtime import set_zone
from fhir_server.heap import freeze_start_up_heap
from fhir_server.identity.mount import mount as mount_identity
from fhir_server.interactions.base import Services
from fhir_server.jobs.monitoring import MonitoringAlerts
from fhir_server.jobs.runtime import build_worker
from fhir_server.operations.conformance_runs import stop_runs as stop_conformance_runs
from fhir_server.operations.dsr_tasks import dsr_task_issues
from fhir_server.operations.export import recover_jobs, stop_exports
from fhir_server.operations.import_operation import recover_imports, stop_imports
from fhir_server.portal.app import bind as bind_portal
from fhir_server.portal.app import mount as mount_portal
from fhir_server.search import get_indexer
from fhir_server.search.cursor import use_key as use_cursor_key
from fhir_server.search.cursor_key import share_cursor_key
from fhir_server.search.parse_controls import configure_paging
from fhir_server.search.parse_limits import configure_limits
from fhir_server.security.facts_store import FACT_TYPES
from fhir_server.security.setup import build_enforcer, build_read_gate, build_verifier
from fhir_server.signatures import install as install_signatures
from fhir_server.storage.protocols import Store
from fhir_server.subscriptions.service import install as install_subscriptions
from fhir_server.subscriptions.service import installed as subscriptions_of
from fhir_server.subscriptions.websocket import PATH as SUBSCRIPTION_SOCKET
from fhir_server.subscriptions.websocket import subscription_socket
from fhir_server.telemed import install as install_telemed
from fhir_server.telemed.recommendations import ReminderScheduler
from fhir_server.validation import get_structure_validator
from fhir_server.validation.on_write import ProfileValidation
from terminology import default_service


def build_services(settings: Settings, store: Store | None = None) -> Services:
    if store is None:
        store = store_for(settings)
    configure_paging(settings.default_page_size, settings.max_page_size)
    set_zone(settings.timezone)  # before anything reads a date
    configure_limits(settings)  # issue 12: bounded work per request (docs/limits.md)
    jsonio.configure(settings.max_json_depth)
    if settings.cursor_secret is not None:
        use_cursor_key(settings.cursor_secret.get_secret_value())
    services = Services(settings=settings, store=store, definitions=get_definitions(),
                        validator=get_structure_validator(), indexer=get_indexer())
    services.enforcer = build_enforcer(settings, store, resource_matcher())
    if services.enforcer.facts is not None:  # issue 11 §3: a Consent revoked on one node, on every node
        watch_changes(store, FACT_TYPES, services.enforcer.facts.bump)
    services.verifier = build_verifier(settings)
    services.read_gate = build_read_gate(services.enforcer, services.verifier, store)
    services.terminology = default_service()
    services.profiles = ProfileValidation(settings, terminology=services.terminology)
    services.extra_validators.append(services.profiles)
    services.change_hooks.append(MonitoringAlerts())  # TM-25/TM-26: critical values raise alerts
    services.extra_validators.append(dsr_task_issues)  # data-subject request Tasks keep their rules (AC-17)
    install_signatures(services)
    # issue 15: the one event source (TM-09, TM-26 notices and the subscriptions listen) and the Subscriptions
    install_subscriptions(services)
    install_telemed(services)  # issue 19: consultation sessions, attachment limits, remote-booking terms
    install_egress(services)  # AC-23: configured and subscribed destinations stay in the allowed hosts
    return services


def create_app(settings: Settings | None = None, store: Store | None = None) -> Operator:
    settings = settings or Settings()
    services = build_services(settings, store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        get_indexer().warm()  # compile every type's search expressions once, not on first writes
        await services.store.open()
        await share_cursor_key(services.store, settings)  # one key for every process on the database
        await publish(services)  # the KZ IG, its terminology and our OperationDefinitions, readable over REST
        await recover_jobs(services.store, settings)  # exports cut off by a restart: marked failed, not hanging
        await recover_imports(services.store, settings)  # imports too (docs/bulk-import.md)
        # AC-18 deliveries, NEHP/payment (TM-11, TM-19), when a channel is configured
        worker = build_worker(settings, services.store, services=services)
        app.state.outbox_worker = worker
        if worker is not None:
            worker.start()
        subscriptions = subscriptions_of(services)
        if subscriptions is not None:
            await subscriptions.start()  # topics published, registry loaded, rest-hook delivery running
        reminders = ReminderScheduler(services.store)  # TM-16: reminders of recommendations, through the outbox
        app.state.reminders = reminders
        reminders.start()
        freeze_start_up_heap()  # definitions, validators, extractors: out of every later collection
        try:
            yield
        finally:
            await reminders.stop()
            if subscriptions is not None:
                await subscriptions.stop()
            if worker is not None:
                await worker.stop()
            await stop_exports(services.store, settings)
            await stop_conformance_runs(services.store)  # a kit run cut off is recorded failed
            await stop_imports(services.store, settings)
            await services.store.close()

    app = FastAPI(title="kzfhir", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.services = services
    errors.install(app)
    app.add_exception_handler(ClientDisconnect, client_gone)  # a line, not a traceback (issue 12)
    mount_identity(app, settings)  # /auth, /.well-known (issue 16): before the FHIR routes
    portal = mount_portal(app, settings)  # /portal (issue 17, KZFHIR_PORTAL): a client of the API, not a back door
    app.include_router(openapi.router)  # before the type routes: /openapi.json is no resource type
    app.add_api_websocket_route(SUBSCRIPTION_SOCKET, subscription_socket)  # issue 15: websocket channel
    app.include_router(system.router)
    app.include_router(bulk.router)  # before operations: $export needs Prefer, and owns $export-status/-file
    app.include_router(bulk_import.router)  # likewise $import (NDJSON bodies) and $import-status/-file
    app.include_router(operations.router)
    app.include_router(type_routes.router)
    app.include_router(instance.router)
    app.include_router(search.router)  # last: its compartment route is the most general path
    # outermost: health, metrics, request ids, CORS (api/operator.py); then limits and codings (api/middleware.py)
    outer = Operator(Hardened(FastReads(app, services), settings), settings)
    bind_portal(portal, outer)  # the portal's API calls pass every layer a request from outside passes
    services.client_app = outer  # likewise the conformance kit's, run by $conformance-run
    return outer
