"""FHIR operations, one module per operation (house style §1), registered in ``registry``."""

from __future__ import annotations

import importlib

_MODULES = ("validate", "terminology_ops", "verify_signature", "patient_everything", "access_log", "notifications",
            "data_subject", "data_report", "export", "import_operation", "nehp_submit", "expunge",
            "access_report", "blocking", "access_flags", "egov_consent",
            "deliveries", "audit_verify", "conformance_runs")


def load_all() -> None:
    """Import every operation module so its handlers register themselves."""
    for name in _MODULES:
        importlib.import_module(f"fhir_server.operations.{name}")
