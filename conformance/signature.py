"""The regulator's EDS on a report (issue 18 part 3), with the signing package (docs/signing.md).

The JSON report is signed as a whole: a CAdES-BES detached signature (``application/pkcs7-signature``)
over the RFC 8785 canonical bytes of the report without its ``signature`` member. The report first
records the SHA-256 of its Markdown and HTML renderings (``renderings``), so the one signature covers
all three files. ``kzfhir verify report.json`` checks the signature, the signer's certificate path and
the renderings found beside the file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conformance.report import SCHEMA
from signing import Expectations, Signer, TrustStore, VerificationStatus, cades
from signing.canonical import serialize
from signing.certificates import name_text
from signing.status import Reason, failed

__all__ = ["RenderingCheck", "ReportVerification", "is_report", "sign_report", "signer_name", "verify_report"]

SIG_FORMAT = cades.MEDIA_TYPE
TARGET_FORMAT = "application/json (RFC 8785 canonical form of the report without 'signature')"


def is_report(data: Any) -> bool:
    return isinstance(data, dict) and str(data.get("schema", "")).startswith(SCHEMA.rsplit("/", 1)[0] + "/")


def signer_name(signer: Signer) -> str:
    return name_text(signer.signing_cert.subject)


def _content(report: Mapping[str, Any]) -> bytes:
    return serialize({k: v for k, v in report.items() if k != "signature"})


async def sign_report(report: Mapping[str, Any], signer: Signer, renderings: Mapping[str, Path]) -> dict[str, Any]:
    """A copy of the report dict with ``renderings`` (file name and SHA-256 of each written rendering)
    and ``signature`` (a FHIR Signature-shaped object: when, who, formats, base64 CMS)."""
    signed = {k: v for k, v in report.items() if k != "signature"}
    signed["renderings"] = {kind: {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
                            for kind, path in renderings.items()}
    when = datetime.now(UTC).replace(microsecond=0)
    cms = await cades.sign_detached(_content(signed), signer, when)
    signed["signature"] = {"when": when.isoformat().replace("+00:00", "Z"), "who": {"display": signer_name(signer)},
                           "sigFormat": SIG_FORMAT, "targetFormat": TARGET_FORMAT,
                           "data": base64.b64encode(cms).decode("ascii")}
    return signed


@dataclass(frozen=True, slots=True)
class RenderingCheck:
    kind: str  # "markdown", "html"
    file: str
    state: str  # "intact", "changed", "absent"


@dataclass(frozen=True, slots=True)
class ReportVerification:
    status: VerificationStatus
    renderings: tuple[RenderingCheck, ...]

    @property
    def ok(self) -> bool:
        return self.status.ok and all(r.state != "changed" for r in self.renderings)


def _renderings(report: Mapping[str, Any], directory: Path) -> tuple[RenderingCheck, ...]:
    checks = []
    for kind, entry in (report.get("renderings") or {}).items():
        name = Path(str(entry.get("file", ""))).name  # never a path outside the report's directory
        path = directory / name
        if not name or not path.is_file():
            checks.append(RenderingCheck(kind, name, "absent"))
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        checks.append(RenderingCheck(kind, name, "intact" if digest == entry.get("sha256") else "changed"))
    return tuple(checks)


async def verify_report(report: Mapping[str, Any], trust: TrustStore | None, directory: Path,
                        expect: Expectations | None = None) -> ReportVerification:
    """Verify the report's signature (never raises) and the renderings beside it in ``directory``."""
    signature = report.get("signature")
    if not isinstance(signature, dict):
        return ReportVerification(failed("cms", Reason.MALFORMED, "the report is not signed"), ())
    if signature.get("sigFormat") != SIG_FORMAT:
        status = failed("cms", Reason.UNSUPPORTED_ALGORITHM, f"sigFormat {signature.get('sigFormat')!r}")
        return ReportVerification(status, ())
    try:
        cms = base64.b64decode(str(signature.get("data", "")), validate=True)
    except (binascii.Error, ValueError):
        return ReportVerification(failed("cms", Reason.MALFORMED, "signature.data is not base64"), ())
    status = await cades.verify_detached(cms, _content(report), trust, expect)
    return ReportVerification(status, _renderings(report, directory))
