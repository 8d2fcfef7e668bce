"""The one error search raises: a request the server cannot run as asked (FHIR R4 search §3.1.1.1:
unknown parameters under ``Prefer: handling=strict``, unparseable values, unsupported modifiers).

It is a :class:`FhirError`, so the API's single error handler turns it into the status and an
OperationOutcome naming the parameter (house style §8).
"""

from __future__ import annotations

from fhir_server.errors import FhirError
from fhir_server.i18n import msg

_CATEGORY = {400: "invalid", 404: "not_found", 403: "forbidden", 501: "not_implemented"}


class SearchError(FhirError):
    """A search request error naming the offending parameter; HTTP ``status`` (400 by default)."""

    def __init__(self, param: str, message: str, status: int = 400, code: str = "invalid") -> None:
        super().__init__(_CATEGORY.get(status, "invalid"), msg("search.parameter", param=param, message=message),
                         code=code, expression=param)
        self.param = param

