"""The sign-in step behind /authorize, as a seam: a ``SignInMethod`` renders its part of the sign-in page
and turns the submitted fields into a registered user, or refuses with a reason.

Today: ``PasswordSignIn`` (a user registered by an administrator, scrypt hash). Planned on the same seam
(issue 16 §3): EDS-certificate login (the page carries a server challenge the person signs with their
NCA authentication certificate; ``sign_in`` checks chain, revocation and the IIN and maps it to a user)
and eGov OIDC federation (``sign_in`` of a callback: the IdP's id_token, subject -> IIN -> user)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Protocol

from fhir_server.identity.passwords import check_password, dummy_hash
from fhir_server.identity.registry import Registry, User


class SignInError(Exception):
    """The sign-in failed; ``str(error)`` is shown to the person (never says which part was wrong)."""


class UnregisteredIin(SignInError):
    """The proof is good and names a person by IIN, but no user is registered with that IIN: the routes
    look the IIN up as a Patient/Practitioner identifier (an async store search) and take the user whose
    fhirUser that resource is, or refuse with this message."""

    def __init__(self, iin: str) -> None:
        super().__init__("No account is registered for this IIN.")
        self.iin = iin


class SignInMethod(Protocol):
    name: str  # the value of the form's ``signin_method`` field
    title: str

    def form_fields(self) -> str:
        """HTML inputs of this method inside the sign-in form (escaped, no scripts)."""
        ...

    def sign_in(self, fields: Mapping[str, str]) -> User:
        """The registered, enabled user the fields prove, or SignInError. Runs on a worker thread."""
        ...


class PasswordSignIn:
    name = "password"
    title = "Username and password"

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def form_fields(self) -> str:
        return ('<label>Username <input name="username" autocomplete="username" required></label>\n'
                '<label>Password <input name="password" type="password" autocomplete="current-password" '
                'required></label>')

    def sign_in(self, fields: Mapping[str, str]) -> User:
        username, password = fields.get("username", "").strip(), fields.get("password", "")
        user = self.registry.user(username) if username else None
        # the same work for an unknown name as for a wrong password: no user enumeration by timing
        valid = check_password(password, user.password_hash if user is not None else dummy_hash())
        if user is None or not valid or user.disabled:
            raise SignInError("The username or password is not correct.")
        return user


def escape(text: str | None) -> str:
    return html.escape(text or "", quote=True)
