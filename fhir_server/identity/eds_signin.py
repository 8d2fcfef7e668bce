"""EDS-certificate sign-in (issue 16 §3): the person signs a server challenge with their NCA RK
*authentication* certificate, and the server maps the IIN in that certificate to a registered user.

Protocol (docs/identity.md "EDS-certificate sign-in"):

1. The sign-in page carries a challenge ``kzfhir-signin|<issuer>|<nonce>|<expiry>|<mac>``: it names this
   server (a signature made for another relying party does not fit), expires after ``CHALLENGE_SECONDS`` and
   is MACed with a server secret, so the page needs no server-side state until it is used.
2. The client signs the challenge's UTF-8 bytes as a detached CMS (CAdES-BES) SignedData carrying the signer's
   certificate and chain: what NCALayer's ``createCAdESFromBase64(storage, "AUTHENTICATION", base64, false)``
   and the eGov mobile signer produce. It posts it base64 in ``eds_cms``.
3. ``sign_in`` checks the MAC and expiry, spends the challenge (single use, in the registry), verifies the
   signature and the certificate with the signing package (path to a configured trust anchor, validity,
   revocation by CRL/OCSP per the configured mode), then requires an *authentication* certificate
   (digitalSignature with extendedKeyUsage clientAuth or an NCA authentication policy) — the inverse of the
   signing rule for documents — and takes the IIN from the subject ``SERIALNUMBER`` (``IIN…``).
4. The IIN names the user registered with it (``kzfhir user add --iin``), or else the user whose fhirUser is the
   Patient/Practitioner carrying that IIN as identifier. An unknown IIN is refused: sign-in never creates users.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from fhir_server.identity.registry import Registry, User
from fhir_server.identity.signin import SignInError, UnregisteredIin, escape
from signing import Reason, TrustStore, extract_iin, verify_cms
from signing.certificates import NCA_AUTH_POLICIES

CHALLENGE_SECONDS = 300
MAX_CMS_BYTES = 32 * 1024
PREFIX = "kzfhir-signin"

def authentication_usage(cert: x509.Certificate) -> str | None:
    """Why the certificate is not one for authentication, or None when it is."""
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.digital_signature:
            return "the certificate's key usage does not allow digital signatures"
    except x509.ExtensionNotFound:
        pass  # absent keyUsage: the key is not restricted (RFC 5280 §4.2.1.3)
    try:
        ekus = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        ekus = set()
    try:
        policies = {p.policy_identifier.dotted_string
                    for p in cert.extensions.get_extension_for_class(x509.CertificatePolicies).value}
    except x509.ExtensionNotFound:
        policies = set()
    if ExtendedKeyUsageOID.CLIENT_AUTH in ekus or policies & NCA_AUTH_POLICIES:
        return None
    return "this is a signing certificate, not an authentication certificate (use the AUTH key)"


class EdsSignIn:
    name = "eds"
    title = "EDS certificate (NCALayer / eGov mobile)"

    def __init__(self, registry: Registry, issuer: str, trust: TrustStore) -> None:
        self.registry, self.issuer, self.trust = registry, issuer, trust
        self._key = registry.secret("eds-challenge")

    # -- the challenge --------------------------------------------------------------------------------------
    def _mac(self, body: str) -> str:
        return hmac.new(self._key, body.encode("utf-8"), hashlib.sha256).hexdigest()

    def challenge(self, now: int | None = None) -> str:
        expires = (int(time.time()) if now is None else now) + CHALLENGE_SECONDS
        body = f"{PREFIX}|{self.issuer}|{secrets.token_urlsafe(24)}|{expires}"
        return f"{body}|{self._mac(body)}"

    def _check_challenge(self, challenge: str) -> tuple[str, int]:
        body, _, mac = challenge.rpartition("|")
        parts = body.split("|")
        if len(parts) != 4 or parts[0] != PREFIX or parts[1] != self.issuer or not hmac.compare_digest(
                self._mac(body), mac) or not parts[3].isdigit():
            raise SignInError("The sign-in challenge is not valid. Please reload the page.")
        expires = int(parts[3])
        if expires <= time.time():
            raise SignInError("The sign-in challenge has expired. Please sign the new one.")
        return parts[2], expires

    def form_fields(self) -> str:
        challenge = self.challenge()
        return (f'<input type="hidden" name="eds_challenge" value="{escape(challenge)}">\n'
                f'<label>Challenge to sign <input readonly value="{escape(challenge)}"></label>\n'
                '<label>Signature (base64 CMS from NCALayer, AUTH key) '
                '<textarea name="eds_cms" rows="4" required></textarea></label>')

    # -- the proof ----------------------------------------------------------------------------------------------
    def sign_in(self, fields: Mapping[str, str]) -> User:
        challenge = fields.get("eds_challenge", "")
        nonce, expires = self._check_challenge(challenge)
        try:
            cms = base64.b64decode("".join(fields.get("eds_cms", "").split()), validate=True)
        except (binascii.Error, ValueError) as error:
            raise SignInError("The signature is not base64.") from error
        if not cms or len(cms) > MAX_CMS_BYTES:
            raise SignInError("The signature is missing or too large.")
        if not self.registry.use_assertion("eds-challenge", nonce, expires):
            raise SignInError("This challenge was already used. Please sign the new one.")
        status = asyncio.run(verify_cms(cms, challenge.encode("utf-8"), self.trust))  # a worker thread: no loop
        # the document-signing rule refuses authentication certificates; here it is the other way round
        problems = [f for f in status.findings if f.reason is not Reason.WRONG_KEY_USAGE]
        if problems or not (status.valid and status.trusted) or status.revoked or not status.certificate_pem:
            reason = problems[0].reason.value if problems else "untrusted"
            raise SignInError(f"The certificate or signature was refused ({reason}).")
        cert = x509.load_pem_x509_certificate(status.certificate_pem.encode("ascii"))
        wrong = authentication_usage(cert)
        if wrong is not None:
            raise SignInError(f"The certificate was refused (wrong-key-usage): {wrong}.")
        iin = extract_iin(cert.subject)
        if iin is None:
            raise SignInError("The certificate names no IIN.")
        user = self.registry.user_by(iin=iin)
        if user is None:
            raise UnregisteredIin(iin)
        if user.disabled:
            raise SignInError("This account cannot sign in.")
        return user
