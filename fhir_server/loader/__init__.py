"""``kzfhir load``: bulk loading of FHIR data into any FHIR server or a kzfhir database (issue 13)."""
