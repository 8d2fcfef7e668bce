"""String normalisation for string search (FHIR R4 search §3.1.1.4.8: case- and accent-insensitive).

Accents are removed by Unicode decomposition (NFKD) and dropping combining marks; case is folded;
runs of white space become one space. Kazakh letters without a decomposition (ә, ғ, қ, ң, ө, ұ, ү,
һ, і) are kept as they are, only case-folded.
"""

from __future__ import annotations

import unicodedata


def normalize(text: str) -> str:
    if text.isascii():
        return " ".join(text.lower().split())
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())
