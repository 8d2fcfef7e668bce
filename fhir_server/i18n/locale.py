"""The language of the ``kzfhir`` command's own messages (docs/languages.md).

``KZFHIR_LANGUAGE`` when set (``kk``, ``ru``, ``en``), else the POSIX locale variables in gettext's
order (``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG``: ``kk_KZ.UTF-8`` is Kazakh), else the
server's ``KZFHIR_DEFAULT_LANGUAGE``, else English. ``C`` and ``POSIX`` state no preference.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from fhir_server.i18n.catalogue import DEFAULT, Language, Message
from fhir_server.i18n.negotiate import lookup

_VARIABLES = ("KZFHIR_LANGUAGE", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG", "KZFHIR_DEFAULT_LANGUAGE")


def _tag(item: str) -> str:
    """``kk_KZ.UTF-8@cyrillic`` -> ``kk-kz``."""
    return item.split(".")[0].split("@")[0].strip().replace("_", "-").lower()


def cli_language(environ: Mapping[str, str] | None = None) -> Language:
    env = os.environ if environ is None else environ
    for name in _VARIABLES:
        for item in env.get(name, "").split(":"):  # LANGUAGE is a list: "kk:ru"
            tag = _tag(item)
            if tag in ("", "c", "posix"):
                continue
            found = lookup(tag)
            if found is not None:
                return found
    return DEFAULT


def say(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` in the command's language (a plain string as it is)."""
    return text.localised(cli_language(environ)) if isinstance(text, Message) else text
