"""Validation tests run against a server in open mode: they are about FHIR rules, not access."""
