"""The server's words in Kazakh, Russian and English (issue 13 §6; docs/languages.md).

A message is raised as ``msg("key", name=value, ...)``: a :class:`Message`, which *is* its English text
(a ``str``: logs, audit records, ``FhirError.message`` and every existing comparison see English) and
remembers its key and parameters, so the HTTP edge can render it again in the language the request
asked for (``Accept-Language``, RFC 9110 §12.5.4). The texts are data: one JSON catalogue per
language in ``messages/``, loaded once at import.
"""

from fhir_server.i18n.catalogue import DEFAULT, LANGUAGES, Language, Message, english, msg, render, substitute
from fhir_server.i18n.negotiate import choose

__all__ = ["DEFAULT", "LANGUAGES", "Language", "Message", "choose", "english", "msg", "render", "substitute"]
