"""The server-rendered sign-in page: no scripts, no external resources, not framable, not cached."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import parse_qsl

from fhir_server.identity.browser import FIELD
from fhir_server.identity.consent import Choice
from fhir_server.identity.signin import SignInMethod, escape
from fhir_server.security.auth.scopes import parse_scope

#: The authorization request travels through the form as hidden fields (everything but the credentials).
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


def sign_in_page(client_name: str, scope: str, request: Mapping[str, str], methods: Sequence[SignInMethod],
                 error: str | None = None, *, csrf: str = "") -> str:
    hidden = "\n".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                       for k, v in {**request, FIELD: csrf}.items())
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


def consent_page(client_name: str, username: str, offer: Choice, ticket: str, csrf: str) -> str:
    """The scopes the app asks for: required ones listed, optional ones as ticked checkboxes (SMART App
    Launch 2.2 §2.0.9: the person may grant fewer scopes than asked)."""
    required = "".join(f"<li><code>{escape(s)}</code> (needed)</li>" for s in offer.required)
    optional = "".join(f'<li><label><input type="checkbox" name="scope_ok" value="{escape(s)}" checked> '
                       f"<code>{escape(s)}</code>{_restriction(s)}</label></li>" for s in offer.optional)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Allow access — kzfhir</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:sans-serif;max-width:32rem;margin:2rem auto}}li{{margin:.3rem 0}}</style></head><body>
<h1>Allow access?</h1>
<p>Signed in as <strong>{escape(username)}</strong>. <strong>{escape(client_name)}</strong> asks for:</p>
<form method="post" action="authorize">
<input type="hidden" name="consent_ticket" value="{escape(ticket)}">
<input type="hidden" name="{FIELD}" value="{escape(csrf)}">
<ul>{required}{optional}</ul>
<p>Your answer is remembered for this app until you revoke it.</p>
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form></body></html>"""


def _restriction(scope: str) -> str:
    """What a SMART granular scope limits the access to, in words (``…Observation.rs?category=vital-signs``)."""
    parsed = parse_scope(scope)
    if parsed is None or parsed.query is None:
        return ""
    what = "resources" if parsed.resource_type == "*" else f"{parsed.resource_type} resources"
    conditions = " and ".join(f"{name} = {value}" for name, value in parse_qsl(parsed.query, keep_blank_values=True))
    return f" — only {escape(what)} where <em>{escape(conditions)}</em>"


def message_page(title: str, message: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} — kzfhir</title></head><body>
<h1>{escape(title)}</h1><p>{escape(message)}</p></body></html>"""
