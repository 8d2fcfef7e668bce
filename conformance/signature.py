"""The regulator's EDS on a report (issue 18 part 3), with the signing package (docs/signing.md).

The JSON report is signed as a whole: a CAdES-BES detached signature (``application/pkcs7-signature``)
over the RFC 8785 canonical bytes of the report without its ``signature`` member. The report first
records the SHA-256 of its Markdown and HTML renderings (``renderings``), so the one signature covers
all three files. ``kzfhir verify report.json`` checks the signature, the signer's certificate path and
the renderings found beside the file.

Beside the report the kit also writes ``report.json.p7s``: a detached CAdES-BES signature over the
exact bytes of the JSON file as written, for recipients who check files with generic CMS tools
(``kzfhir verify report.json.p7s`` or ``openssl cms -verify -binary -content report.json``) rather than
parse the report. ``kzfhir verify report.json`` checks it too when it is there.
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

__all__ = ["DETACHED_SUFFIX", "RenderingCheck", "ReportVerification", "detached_path", "is_report", "sign_file",
           "sign_report", "signer_name", "verify_file", "verify_report"]

SIG_FORMAT = cades.MEDIA_TYPE
TARGET_FORMAT = "application/json (RFC 8785 canonical form of the report without 'signature')"
DETACHED_SUFFIX = ".p7s"


def detached_path(report: Path) -> Path:
    """Where the detached signature of the report file goes: ``r.json`` -> ``r.json.p7s``."""
    return report.with_name(report.name + DETACHED_SUFFIX)


async def sign_file(content: bytes, signer: Signer) -> bytes:
    """A detached CAdES-BES signature (DER) over the report file's bytes."""
    return await cades.sign_detached(content, signer)


async def verify_file(report: Path, trust: TrustStore | None,
                      expect: Expectations | None = None) -> VerificationStatus | None:
    """The detached signature beside ``report`` verified over its bytes (None: there is none)."""
    signature = detached_path(report)
    if not signature.is_file():
        return None
    return await cades.verify_detached(signature.read_bytes(), report.read_bytes(), trust, expect)


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
