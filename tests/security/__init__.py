"""Tests of fhir_server.security (authentication, access policy, audit)."""
