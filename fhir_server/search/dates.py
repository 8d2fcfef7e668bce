"""Search reads dates through the server's one FHIR date parser (fhir_server/fhirtime.py)."""

from fhir_server.fhirtime import MAX_TIME, MIN_TIME, date_range, format_instant, now_us

__all__ = ["MAX_TIME", "MIN_TIME", "date_range", "format_instant", "now_us"]
