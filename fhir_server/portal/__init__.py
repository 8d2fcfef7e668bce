"""The patient's cabinet and the organisation's console in the browser (issue 17; docs/portal.md).

A client of this server's own FHIR API, mounted at ``/portal`` when ``KZFHIR_PORTAL=true``: server-rendered
pages (Jinja2, no script), sign-in through the built-in authorization server, the person's token kept on
the server, every page's data asked of the API with that token (policy, consent and audit as for any client).
"""
