"""The telecom (video/chat) service behind a remote consultation (TM-20): an integration seam.

The server never stores a join link (TM-21): it keeps the service's opaque session id on the Encounter
and asks the service for a participant's own link each time that participant joins
(``Encounter/$consultation-join``). Only opaque references (``Patient/7``) are sent, never names or IINs:
the service needs to tell participants apart, not to know who they are.

Wire format v1 (docs/consultation.md "Telecom service API"), JSON over HTTPS with an optional bearer token:

* ``POST {base}/v1/sessions`` ``{"consultation", "appointment", "participants": [ref...]}`` → ``{"sessionId"}``
* ``POST {base}/v1/sessions/{id}/join`` ``{"participant": ref}`` → ``{"link", "expires"?}``
* ``POST {base}/v1/sessions/{id}/end`` → ``{"start"?, "end"?, "participants"?: [ref...]}``
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from fhir_server.config import Settings
from fhir_server.errors import FhirError

API_VERSION = "v1"
_SESSION_ID = re.compile(r"[A-Za-z0-9._~-]{1,128}")
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})")
_REF = re.compile(r"(Patient|Practitioner|PractitionerRole|RelatedPerson)/[A-Za-z0-9\-.]{1,64}")


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """What the service reports when a session ends."""

    start: str | None
    end: str | None
    participants: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class JoinLink:
    link: str
    expires: str | None


class VideoService(Protocol):
    """Start a session for a consultation, give one participant their link, end it and report."""

    name: str

    async def start(self, consultation: str, appointment: str | None, participants: list[str]) -> str: ...

    async def join(self, session_id: str, participant: str) -> JoinLink: ...

    async def end(self, session_id: str) -> SessionRecord: ...


class HttpVideoService:
    """The v1 wire format over httpx. Every failure of the service is a 502 OperationOutcome, never a 500."""

    def __init__(self, base_url: str, *, name: str = "video", token: str | None = None, timeout: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout
        self._transport = transport

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/{API_VERSION}/{path}"
        try:
            async with httpx.AsyncClient(timeout=self._timeout, transport=self._transport) as client:
                response = await client.post(url, json=body, headers=self._headers)
        except httpx.HTTPError as exc:
            raise FhirError("bad_gateway", f"the telecom service {self.name!r} could not be reached "
                            f"({type(exc).__name__})") from exc
        if response.status_code >= 300:
            raise FhirError("bad_gateway", f"the telecom service {self.name!r} answered {response.status_code}")
        try:
            answer = response.json()
        except ValueError as exc:
            raise FhirError("bad_gateway", f"the telecom service {self.name!r} answered no JSON") from exc
        if not isinstance(answer, dict):
            raise FhirError("bad_gateway", f"the telecom service {self.name!r} answered no JSON object")
        return answer

    async def start(self, consultation: str, appointment: str | None, participants: list[str]) -> str:
        answer = await self._post("sessions", {"consultation": consultation, "appointment": appointment,
                                               "participants": participants})
        session_id = answer.get("sessionId")
        if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
            raise FhirError("bad_gateway", f"the telecom service {self.name!r} gave no usable sessionId")
        return session_id

    async def join(self, session_id: str, participant: str) -> JoinLink:
        answer = await self._post(f"sessions/{session_id}/join", {"participant": participant})
        link, expires = answer.get("link"), answer.get("expires")
        if not isinstance(link, str) or not link.startswith(("https://", "http://")) or len(link) > 2048:
            raise FhirError("bad_gateway", f"the telecom service {self.name!r} gave no usable link")
        return JoinLink(link, expires if isinstance(expires, str) and _INSTANT.fullmatch(expires) else None)

    async def end(self, session_id: str) -> SessionRecord:
        answer = await self._post(f"sessions/{session_id}/end", {})
        start, end = (answer.get(k) for k in ("start", "end"))
        joined = answer.get("participants") or []
        return SessionRecord(
            start if isinstance(start, str) and _INSTANT.fullmatch(start) else None,
            end if isinstance(end, str) and _INSTANT.fullmatch(end) else None,
            tuple(sorted({p for p in joined if isinstance(p, str) and _REF.fullmatch(p)}))
            if isinstance(joined, list) else (),
        )


def video_service_for(settings: Settings) -> VideoService | None:
    """The configured telecom service, or None (consultations then run without a session)."""
    if not settings.video_service_url:
        return None
    token = settings.video_service_token.get_secret_value() if settings.video_service_token else None
    return HttpVideoService(settings.video_service_url, name=settings.video_service_name, token=token,
                            timeout=settings.video_service_timeout)


def valid_session_id(value: object) -> bool:
    return isinstance(value, str) and bool(_SESSION_ID.fullmatch(value))
