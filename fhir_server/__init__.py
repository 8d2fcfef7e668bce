"""kzfhir: a FHIR R4 (4.0.1) server for Kazakhstan's digital health."""

__version__ = "0.1.0"
