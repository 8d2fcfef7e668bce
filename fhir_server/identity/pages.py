"""The server-rendered sign-in page: no scripts, no external resources, not framable, not cached."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fhir_server.identity.signin import SignInMethod, escape

#: The authorization request travels through the form as hidden fields (everything but the credentials).
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


def sign_in_page(client_name: str, scope: str, request: Mapping[str, str], methods: Sequence[SignInMethod],
                 error: str | None = None) -> str:
    hidden = "\n".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in request.items())
    forms = "\n".join(
        f'<form method="post" action="authorize"><fieldset><legend>{escape(m.title)}</legend>\n{hidden}\n'
        f'<input type="hidden" name="signin_method" value="{escape(m.name)}">\n{m.form_fields()}\n'
        '<button type="submit">Sign in</button></fieldset></form>' for m in methods)
    problem = f'<p role="alert" class="error">{escape(error)}</p>' if error else ""
    items = "".join(f"<li><code>{escape(s)}</code></li>" for s in scope.split())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in — kzfhir</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:sans-serif;max-width:32rem;margin:2rem auto}}label{{display:block;margin:.5rem 0}}
.error{{color:#a00}}</style></head><body>
<h1>Sign in</h1>
<p><strong>{escape(client_name)}</strong> asks for access:</p><ul>{items}</ul>
{problem}
{forms}
</body></html>"""


def error_page(message: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign-in request refused — kzfhir</title></head><body>
<h1>This sign-in request cannot be served</h1><p>{escape(message)}</p></body></html>"""
