"""What every interaction shares: the services it runs on, its request and response values."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fhir_server.config import Settings
from fhir_server.definitions import Definitions
from fhir_server.errors import FhirError
from fhir_server.i18n import msg
from fhir_server.jsonio import dumps
from fhir_server.security.context import RequestContext
from fhir_server.storage.protocols import Store, StoredResource
from fhir_server.validation.structure import StructureValidator

if TYPE_CHECKING:
    from fhir_server.validation.on_write import ProfileValidation

ID_RE = re.compile(r"[A-Za-z0-9\-.]{1,64}")

@dataclass(slots=True)
class Services:
    """The long-lived objects interactions use (built once in api/app.py)."""

    settings: Settings
    store: Store
    definitions: Definitions
    validator: StructureValidator
    indexer: Any  # fhir_server.search.Indexer
    extra_validators: list[Any] = field(default_factory=list)  # write-time validators after the base one
    profiles: ProfileValidation | None = None  # $validate and profile checks (validation/on_write.py)
    terminology: Any = None  # terminology.TerminologyService
    enforcer: Any = None  # security.session.Enforcer: policy, facts cache, audit
    verifier: Any = None  # security.auth.TokenVerifier (None with security off)
    read_gate: Any = None  # security.read_gate.ReadGate: the compiled secured read by id
    # Called inside the write unit after each stored version: hook(view, services, resource, stored).
    # They may write more (a Provenance for a signed record, issue 6) atomically with the change.
    write_hooks: list[Any] = field(default_factory=list)
    # Like write_hooks, with the version replaced: hook(view, services, previous_json_or_None, resource, stored).
    change_hooks: list[Any] = field(default_factory=list)
    # The outermost ASGI application (api/app.py), for the server's own in-process clients: the conformance kit
    # run from $conformance-run calls the API through it as any client would (operations/conformance_runs.py).
    client_app: Any = None


@dataclass(slots=True)
class Prefer:
    """The parsed ``Prefer`` header (FHIR R4 http.html §3.1.0.5.2)."""

    return_: str = "representation"  # minimal | representation | OperationOutcome
    handling: str = "lenient"  # strict | lenient (search)

    @classmethod
    def parse(cls, header: str | None) -> Prefer:
        p = cls()
        if not header:
            return p
        for part in header.split(","):
            name, _, value = part.strip().partition("=")
            value = value.strip().strip('"')
            if name.strip() == "return" and value in ("minimal", "representation", "OperationOutcome"):
                p.return_ = value
            elif name.strip() == "handling" and value in ("strict", "lenient"):
                p.handling = value
        return p


@dataclass(slots=True)
class FhirResponse:
    status: int
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    stored: StoredResource | None = None  # the version this response is about (batch entries use it)
    outcome: dict[str, Any] | None = None  # OperationOutcome for Prefer: return=OperationOutcome


def etag(version: int) -> str:
    return f'W/"{version}"'


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


_WEEKDAYS: dict[str, str] = {}


def http_date(instant: str) -> str:
    """RFC 7231 HTTP-date of a stored instant (``YYYY-MM-DDThh:mm:ss.ffffffZ``), for Last-Modified.

    Built from the fixed positions rather than strptime/strftime, with the weekday remembered per
    day: it runs on every read.
    """
    ymd = instant[0:10]
    weekday = _WEEKDAYS.get(ymd)
    if weekday is None:
        if len(_WEEKDAYS) > 50_000:
            _WEEKDAYS.clear()
        weekday = _WEEKDAYS[ymd] = _DAYS[datetime(int(ymd[0:4]), int(ymd[5:7]), int(ymd[8:10]), tzinfo=UTC).weekday()]
    return f"{weekday}, {instant[8:10]} {_MONTHS[int(instant[5:7]) - 1]} {instant[0:4]} {instant[11:19]} GMT"


def version_headers(stored: StoredResource, base_url: str, *, location: bool) -> dict[str, str]:
    headers = {"ETag": etag(stored.version), "Last-Modified": http_date(stored.last_updated)}
    if location:
        headers["Location"] = f"{base_url}/{stored.type}/{stored.id}/_history/{stored.version}"
    return headers


def check_type(services: Services, resource_type: str) -> None:
    if not services.definitions.is_resource_type(resource_type):
        raise FhirError("not_found", msg("resource.unknown_type", type=resource_type), code="not-supported")


def check_id(resource_id: str) -> None:
    if not ID_RE.fullmatch(resource_id):
        raise FhirError("invalid", msg("resource.bad_id", id=resource_id[:80]),
                        code="value", expression="id")


def parse_etag(value: str | None, header: str) -> int | None:
    """The version in an ``If-Match`` / ``If-None-Match`` ETag (``W/"3"`` or ``"3"``)."""
    if value is None:
        return None
    v = value.strip()
    if v.startswith("W/"):
        v = v[2:]
    v = v.strip('"')
    if not (v.isascii() and v.isdigit()):
        raise FhirError("invalid", msg("version.bad_etag", header=header, value=value), code="value")
    return int(v)


def with_meta(resource: dict[str, Any], resource_type: str, resource_id: str, version: int,
              timestamp: str) -> dict[str, Any]:
    """The resource with id, meta.versionId and meta.lastUpdated set by the server.

    The server owns versionId and lastUpdated (FHIR R4 resource.html §2.1.0.4.1); the client's other
    meta (profile, tag, security, source) is kept.
    """
    meta = resource.get("meta")
    meta = dict(meta) if isinstance(meta, dict) else {}
    meta["versionId"] = str(version)
    meta["lastUpdated"] = timestamp
    out: dict[str, Any] = {"resourceType": resource_type, "id": resource_id, "meta": meta}
    for k, v in resource.items():
        if k not in out:
            out[k] = v
    return out


def representation(stored: StoredResource, prefer: Prefer, status: int, base_url: str, *,
                   location: bool) -> FhirResponse:
    headers = version_headers(stored, base_url, location=location)
    if prefer.return_ == "minimal":
        return FhirResponse(status, None, headers, stored)
    if prefer.return_ == "OperationOutcome":
        outcome = {"resourceType": "OperationOutcome", "issue": [{
            "severity": "information", "code": "informational",
            "diagnostics": f"{stored.type}/{stored.id} version {stored.version} stored"}]}
        return FhirResponse(status, dumps(outcome), headers, stored, outcome)
    return FhirResponse(status, stored.data, headers, stored)


def request_context_or_system(ctx: RequestContext | None) -> RequestContext:
    return ctx or RequestContext.system()
