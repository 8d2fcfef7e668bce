"""The kit's HTTP client: every exchange becomes evidence of the check that is running."""

from __future__ import annotations

import json as jsonlib
import time
import uuid
from dataclasses import replace
from typing import Any

import httpx

from conformance.identities import Identity
from conformance.model import Evidence

__all__ = ["FHIR_JSON", "FhirClient", "excerpt", "json_body", "request_id_of", "response_excerpt"]

FHIR_JSON = "application/fhir+json"
_KEPT_HEADERS = ("content-type", "etag", "location", "last-modified", "www-authenticate")
_EXCERPT_CHARS = 300


def excerpt(text: str, limit: int = _EXCERPT_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _bundle_summary(bundle: dict[str, Any]) -> str:
    """Bundles are summarised by type, total and entry ids, never quoted: a search on a vendor's system
    may return real patients, and a report must not carry their data."""
    entries = [e for e in bundle.get("entry") or [] if isinstance(e, dict)]
    refs = [f"{(e.get('resource') or {}).get('resourceType')}/{(e.get('resource') or {}).get('id')}"
            for e in entries[:5] if isinstance(e.get("resource"), dict)]
    more = f" +{len(entries) - 5}" if len(entries) > 5 else ""
    return (f"Bundle type={bundle.get('type')} total={bundle.get('total', '-')} entries={len(entries)}"
            f" [{', '.join(refs)}{more}]")


def response_excerpt(response: httpx.Response) -> str:
    body = json_body(response)
    if body is not None and body.get("resourceType") == "Bundle":
        return _bundle_summary(body)
    return excerpt(response.text)


def _ms(began: float) -> int:
    return int((time.perf_counter() - began) * 1000)


def request_id_of(response: httpx.Response) -> str:
    """The X-Request-Id the kit sent with the request that got ``response``."""
    return response.request.headers.get("X-Request-Id", "")


def json_body(response: httpx.Response) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is empty, not JSON, or not an object."""
    try:
        body = jsonlib.loads(response.content) if response.content else None
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class FhirClient:
    """Wraps ``httpx.AsyncClient`` (base URL, default headers, timeout, transport).

    ``authenticated`` is true when the caller gave a token or an Authorization header: the security
    checks and the handling of 401 answers depend on it (see docs/conformance-kit.md).
    """

    def __init__(self, client: httpx.AsyncClient, *, authenticated: bool, max_evidence: int = 24) -> None:
        self.http = client
        self.authenticated = authenticated
        self.max_evidence = max_evidence
        self.secrets: set[str] = set()  # tokens sent: never written to a report, even if a server echoes one
        self._evidence: list[Evidence] = []
        self._omitted = 0

    def take_evidence(self) -> tuple[tuple[Evidence, ...], int]:
        """The evidence gathered since the last call (and how many exchanges were left out), then reset."""
        taken, omitted = tuple(self._evidence), self._omitted
        self._evidence, self._omitted = [], 0
        return taken, omitted

    def url(self, path: str) -> str:
        return str(self.http.base_url.join(path))

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        anonymous: bool = False,
        identity: Identity | None = None,
    ) -> httpx.Response:
        """Send one request relative to the base URL. ``anonymous`` strips the Authorization header;
        ``identity`` sends it as that test identity (its token and extra headers); an ``Authorization``
        entry in ``headers`` replaces it for this request only. Every request carries a fresh
        ``X-Request-Id``, so the audit checks can find the server's record of it (AC-14)."""
        # A random id, no fixed prefix: a server must not be able to tell the kit's traffic from an MIS's
        # and enforce its rules for the kit only (issue 18: a kit a regulator can certify with).
        request_id = str(uuid.uuid4())
        if identity is not None:
            self.secrets.add(identity.token)
        merged = {"Accept": FHIR_JSON, "X-Request-Id": request_id,
                  **(identity.request_headers() if identity else {}), **(headers or {})}
        if json is not None:
            content = jsonlib.dumps(json, ensure_ascii=False).encode()
            merged.setdefault("Content-Type", FHIR_JSON)
        request = self.http.build_request(method, path.lstrip("/"), content=content, params=params,
                                          headers=merged)
        if anonymous:
            request.headers.pop("Authorization", None)
        who = identity.label if identity else ("anonymous" if anonymous else "")
        began = time.perf_counter()
        try:
            response = await self.http.send(request)
        except httpx.TransportError as exc:
            self._append(Evidence(f"{request.method} {request.url}", None, {}, excerpt(repr(exc)), who,
                                  _ms(began), request_id))
            raise
        kept = {name: response.headers[name] for name in _KEPT_HEADERS if name in response.headers}
        self._append(Evidence(f"{request.method} {request.url}", response.status_code, kept,
                              response_excerpt(response), who, _ms(began), request_id))
        return response

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kwargs)

    def redact(self, text: str) -> str:
        """``text`` without any token the kit sent (a server may echo a request into its answer)."""
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "[token]")
        return text

    def _append(self, evidence: Evidence) -> None:
        if len(self._evidence) >= self.max_evidence:
            self._omitted += 1
        else:
            self._evidence.append(replace(evidence, excerpt=self.redact(evidence.excerpt)))
