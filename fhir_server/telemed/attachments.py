"""Materials exchanged during a consultation (TM-02): limits on inline attachments, and a virus-scan seam.

Every write of a Communication (``payload.contentAttachment``), DocumentReference (``content.attachment``),
Media (``content``) or Binary passes these rules, on every path that writes (single interactions, batch and
transaction entries, conditional forms: they are a write validator):

* an attachment with ``data`` names its ``contentType`` (R4 att-1), one of ``KZFHIR_ATTACHMENT_MEDIA_TYPES``
  (else 415);
* its decoded size is at most ``KZFHIR_ATTACHMENT_MAX_BYTES`` (else 413);
* with ``KZFHIR_ATTACHMENT_SCANNER`` set, the decoded bytes are scanned first; a finding is 422 (issue code
  ``security``) and a scanner that cannot answer refuses the write (502): nothing unscanned is stored.
"""

from __future__ import annotations

import base64
import binascii
import socket
import struct
from collections.abc import Iterator
from typing import Any, Protocol
from urllib.parse import urlsplit

from fhir_server.config import Settings
from fhir_server.errors import FhirError
from fhir_server.validation.issues import Issue

_CHUNK = 64 * 1024


class AttachmentScanner(Protocol):
    """The seam for a virus scanner: the name of what it found in ``data``, or None when clean. Raises
    ``OSError`` (or any ``Exception``) when it cannot tell."""

    def scan(self, data: bytes) -> str | None: ...


class ClamdScanner:
    """ClamAV's daemon over TCP, its INSTREAM command (clamd(8)): length-prefixed chunks, then a zero length;
    the answer is ``stream: OK`` or ``stream: <name> FOUND``."""

    def __init__(self, host: str, port: int, *, timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout

    def scan(self, data: bytes) -> str | None:
        with socket.create_connection((self.host, self.port), timeout=self.timeout) as conn:
            conn.sendall(b"zINSTREAM\0")
            for i in range(0, len(data), _CHUNK):
                chunk = data[i:i + _CHUNK]
                conn.sendall(struct.pack(">I", len(chunk)) + chunk)
            conn.sendall(struct.pack(">I", 0))
            answer = b""
            while not answer.endswith(b"\0"):
                more = conn.recv(4096)
                if not more:
                    break
                answer += more
        text = answer.rstrip(b"\0").decode("utf-8", "replace").strip()
        if text.endswith(" OK"):
            return None
        if text.endswith(" FOUND"):
            return text.removeprefix("stream:").removesuffix(" FOUND").strip() or "malware"
        raise OSError(f"clamd answered {text[:200]!r}")


def scanner_for(settings: Settings) -> AttachmentScanner | None:
    if not settings.attachment_scanner:
        return None
    url = urlsplit(settings.attachment_scanner)
    if url.scheme != "clamd" or not url.hostname or not url.port:
        raise ValueError("KZFHIR_ATTACHMENT_SCANNER must look like clamd://host:port")
    return ClamdScanner(url.hostname, url.port)


def attachments(resource: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """Each Attachment of the consultation materials with its FHIRPath."""
    rtype = resource.get("resourceType")
    if rtype == "Communication":
        for i, payload in enumerate(resource.get("payload", []) or []):
            if isinstance(payload, dict) and isinstance(payload.get("contentAttachment"), dict):
                yield payload["contentAttachment"], f"Communication.payload[{i}].contentAttachment"
    elif rtype == "DocumentReference":
        for i, content in enumerate(resource.get("content", []) or []):
            if isinstance(content, dict) and isinstance(content.get("attachment"), dict):
                yield content["attachment"], f"DocumentReference.content[{i}].attachment"
    elif rtype == "Media" and isinstance(resource.get("content"), dict):
        yield resource["content"], "Media.content"
    elif rtype == "Binary":
        yield resource, "Binary"


def carries_data(resource: dict[str, Any]) -> bool:
    return any("data" in att for att, _ in attachments(resource))


def _decoded_size(data: str) -> int:
    body = data.rstrip("=")
    return len(body) * 3 // 4


class AttachmentRules:
    """A ``Services.extra_validators`` entry for the limits above."""

    def __init__(self, settings: Settings, scanner: AttachmentScanner | None = None) -> None:
        self.max_bytes = settings.attachment_max_bytes
        self.media_types = frozenset(t.strip().lower() for t in settings.attachment_media_types.split(",")
                                     if t.strip())
        self.scanner = scanner if scanner is not None else scanner_for(settings)

    def __call__(self, resource: dict[str, Any], mode: str) -> list[Issue]:
        for att, where in attachments(resource):
            data = att.get("data")
            if data is None:
                continue
            media = str(att.get("contentType") or "").split(";", 1)[0].strip().lower()
            if not media:
                raise FhirError("invalid", "an attachment with data names its contentType (R4 att-1)",
                                code="required", expression=f"{where}.contentType")
            if media not in self.media_types:
                raise FhirError("unsupported_media_type", f"attachments of type {media[:100]!r} are not accepted; "
                                f"allowed: {', '.join(sorted(self.media_types))}", code="not-supported",
                                expression=f"{where}.contentType")
            if not isinstance(data, str) or _decoded_size(data) > self.max_bytes:
                raise FhirError("too_large", f"an attachment holds at most {self.max_bytes} bytes",
                                code="too-costly", expression=f"{where}.data")
            if self.scanner is not None:
                self._scan(data, where)
        return []

    def _scan(self, data: str, where: str) -> None:
        assert self.scanner is not None
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise FhirError("invalid", "attachment data is not base64", code="value",
                            expression=f"{where}.data") from exc
        try:
            found = self.scanner.scan(raw)
        except Exception as exc:  # a scanner that cannot tell stores nothing unscanned
            raise FhirError("bad_gateway", f"the virus scanner could not check the attachment "
                            f"({type(exc).__name__})", code="transient", expression=f"{where}.data") from exc
        if found is not None:
            raise FhirError("unprocessable", f"the attachment was refused by the virus scanner: {found[:200]}",
                            code="security", expression=f"{where}.data")
