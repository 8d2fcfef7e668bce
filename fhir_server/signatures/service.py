"""The server's EDS verifier (AC-25, TM-10): the trust store built from the settings, verification
for the synchronous write path, and a short memory of recent results for the Provenance hook.

The trust store is built once at start-up and rebuilt when the files in ``trust_dir`` change (checked
at most every ``RELOAD_SECONDS``), so an operator job that drops fresh NCA CRLs into the folder takes
effect without a restart. The server only verifies: it never holds a doctor's private key.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

from cryptography import x509

from fhir_server.config import Settings
from signing import (
    HttpExternalVerifier,
    RevocationPolicy,
    TrustStore,
    VerificationStatus,
    verify_fhir_signature,
)
from signing.revocation import RevocationMode

log = logging.getLogger(__name__)

RELOAD_SECONDS = 30.0
_REMEMBERED = 512  # recent results kept for the Provenance hook; a miss only costs a re-verification
_MODES = ("off", "soft", "hard")


def _revocation(settings: Settings) -> RevocationPolicy:
    if settings.revocation_mode not in _MODES:
        raise ValueError(f"KZFHIR_REVOCATION_MODE must be one of {', '.join(_MODES)}, "
                         f"not {settings.revocation_mode!r}")
    return RevocationPolicy(mode=cast(RevocationMode, settings.revocation_mode), ocsp_url=settings.ocsp_url)


def _fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    return tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in directory.iterdir()
                        if p.is_file()))


def signature_key(signature: dict[str, Any]) -> str:
    """A key for one signature value: the signer facts (certificate, subject, IIN/BIN) depend on it alone."""
    return hashlib.sha256(str(signature.get("data", "")).encode("utf-8")).hexdigest()


class SignatureService:
    """Verifies FHIR Signatures against the configured trust (one per server)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.policy = _revocation(settings)
        self.trust_dir = settings.trust_dir
        url = settings.external_verifier_url
        self._external = HttpExternalVerifier(url) if url else None
        self._lock = threading.Lock()
        self._recent: OrderedDict[str, VerificationStatus] = OrderedDict()
        # One worker with its own event loop per call: the write path is synchronous (validators
        # run on the event loop thread, hooks in the store's writer thread) and the signing API is async.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kzfhir-eds")
        self._trust: TrustStore | None = None
        self._seen: tuple[tuple[str, int, int], ...] = ()
        self._checked = 0.0
        if self.trust_dir is not None:
            if not self.trust_dir.is_dir():
                raise ValueError(f"KZFHIR_TRUST_DIR {self.trust_dir} is not a directory")
            self._load()

    @property
    def has_trust(self) -> bool:
        return self.trust_dir is not None

    def _load(self) -> None:
        assert self.trust_dir is not None
        seen = _fingerprint(self.trust_dir)
        trust = TrustStore.from_directory(self.trust_dir, self.policy)
        trust.external_verifier = self._external
        self._trust, self._seen = trust, seen

    def trust(self) -> TrustStore | None:
        """The current trust store, rebuilt if the folder's files changed since the last look."""
        if self.trust_dir is None:
            return None
        now = time.monotonic()
        with self._lock:
            if now - self._checked >= RELOAD_SECONDS:
                self._checked = now
                try:
                    if _fingerprint(self.trust_dir) != self._seen:
                        self._load()
                        log.info("trust store reloaded from %s", self.trust_dir)
                except (OSError, ValueError) as exc:  # a file half-written by the operator's job
                    log.warning("trust store not reloaded, keeping the previous one: %s", exc)
            return self._trust

    async def verify(self, resource: dict[str, Any], signature: dict[str, Any], iin: str | None = None,
                     bin_: str | None = None) -> VerificationStatus:
        """Verify one Signature over ``resource`` (never raises) and remember the result."""
        status = await verify_fhir_signature(resource, signature, self.trust(), iin, bin_)
        self._remember(signature, status)
        return status

    def verify_blocking(self, resource: dict[str, Any], signature: dict[str, Any], iin: str | None = None,
                        bin_: str | None = None) -> VerificationStatus:
        """:meth:`verify` for synchronous callers, run on the worker thread's own event loop."""
        return self._executor.submit(asyncio.run, self.verify(resource, signature, iin, bin_)).result()

    def _remember(self, signature: dict[str, Any], status: VerificationStatus) -> None:
        with self._lock:
            key = signature_key(signature)
            self._recent[key] = status
            self._recent.move_to_end(key)
            while len(self._recent) > _REMEMBERED:
                self._recent.popitem(last=False)

    def recall(self, signature: dict[str, Any]) -> VerificationStatus | None:
        """The result of the last verification of this signature value, if still remembered."""
        with self._lock:
            return self._recent.get(signature_key(signature))


def signer_certificate(status: VerificationStatus) -> x509.Certificate | None:
    """The signer's certificate the verification found (None for a signature it could not parse)."""
    if not status.certificate_pem:
        return None
    try:
        return x509.load_pem_x509_certificate(status.certificate_pem.encode("ascii"))
    except ValueError:
        return None
