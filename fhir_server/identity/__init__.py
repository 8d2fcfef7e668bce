"""The built-in SMART App Launch 2.2 authorization server (issue 16; docs/identity.md).

Off unless ``KZFHIR_AUTH_SERVER=true``. Then ``mount`` adds ``/auth/*`` and ``/.well-known/*`` to the app,
and ``security/setup.py::build_verifier`` trusts the tokens it signs (``trust.builtin_verifier``). The OAuth 2
mechanics are authlib's (grants, PKCE, client assertions, revocation, introspection, OpenID id tokens);
this package holds the SMART rules, the records and the sign-in seam (``signin.SignInMethod``)."""
