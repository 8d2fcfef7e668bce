"""The browser's side of /authorize: the login CSRF token and the limit on failed sign-ins.

Login CSRF (RFC 6749 §10.12, OWASP "signed double-submit cookie"): the sign-in page sets a random cookie
(``SameSite=Lax``, ``HttpOnly``, ``Secure`` on an https issuer, path ``/auth``) and puts an HMAC of it, keyed
with a server secret kept in the registry, in every form. A post counts only when the form's token is the
HMAC of the cookie the browser sent: another site can make a browser post the form, but it can neither read
nor set that cookie, nor compute the HMAC. ``Lax`` still sends the cookie on the top-level GET with which an
external IdP returns the person, so the federation callback can check it too.

Failed sign-ins are counted in the registry, per username and per client IP, within a window (settings
``KZFHIR_AUTH_SIGNIN_MAX_FAILURES_PER_USER`` / ``_PER_IP`` / ``_FAILURE_WINDOW_SECONDS``). Beyond either
limit the attempt is refused before any credential is checked. Counting per username locks that name for the
window even against its owner: the price of stopping password guessing spread over many addresses."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.identity.issuer import IdentityConfig
from fhir_server.identity.registry import Registry

COOKIE = "kzfhir_signin"
FIELD = "csrf_token"
COOKIE_SECONDS = 3600


class BrowserGuard:
    def __init__(self, config: IdentityConfig, registry: Registry) -> None:
        self.config, self.registry = config, registry
        self._key: bytes | None = None

    def _hmac(self, value: str) -> str:
        if self._key is None:
            self._key = self.registry.secret("login-csrf")
        return hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()

    # -- CSRF ---------------------------------------------------------------------------------------------
    def browser_id(self, request: Request) -> tuple[str, bool]:
        """This browser's cookie value, and whether it is new (then ``set_cookie`` must send it)."""
        value = request.cookies.get(COOKIE, "")
        if 32 <= len(value) <= 128 and value.isascii():
            return value, False
        return secrets.token_urlsafe(32), True

    def token(self, browser: str) -> str:
        return self._hmac(f"csrf:{browser}")

    def binding(self, browser: str) -> str:
        """A value that ties a server-side record (an IdP round trip) to this browser, without the cookie."""
        return self._hmac(f"bind:{browser}")

    def check(self, request: Request, submitted: str) -> bool:
        value = request.cookies.get(COOKIE, "")
        return bool(value) and bool(submitted) and hmac.compare_digest(self.token(value), submitted)

    def set_cookie(self, response: Response, browser: str) -> None:
        response.set_cookie(COOKIE, browser, max_age=COOKIE_SECONDS, path="/auth", httponly=True,
                            secure=self.config.secure_cookies, samesite="lax")

    # -- failed sign-ins ------------------------------------------------------------------------------------
    def _keys(self, ip: str | None, username: str | None) -> list[str]:
        keys = [f"ip:{ip or '?'}"]
        if username:
            keys.append(f"user:{username.strip().lower()}")
        return keys

    def limited(self, ip: str | None, username: str | None) -> bool:
        since = int(time.time()) - self.config.failure_window_seconds
        ip_key, *user_key = self._keys(ip, username)
        if self.registry.failures(ip_key, since) >= self.config.max_failures_per_ip:
            return True
        return bool(user_key) and self.registry.failures(user_key[0], since) >= self.config.max_failures_per_user

    def failed(self, ip: str | None, username: str | None) -> None:
        self.registry.add_failure(self._keys(ip, username))

    def succeeded(self, username: str) -> None:
        self.registry.clear_failures(f"user:{username.strip().lower()}")
