"""The shipped access policy must know the patient-facing operations by name: the route-level gate
(api/routes/operations.py) asks it with the operation's own name before the handler runs, so an
operation missing from ``PolicySettings`` is refused to auditors and admins in production."""

from __future__ import annotations

import pytest

from fhir_server.security.policy.rules import PolicySettings
from tests.patient_ops.conftest import ADMIN_OPERATIONS, OVERSIGHT_OPERATIONS


@pytest.mark.req("AC-24")
@pytest.mark.req("AC-16")
def test_shipped_policy_lets_oversight_roles_run_the_patient_operations() -> None:
    shipped = PolicySettings()
    missing_auditor = sorted(OVERSIGHT_OPERATIONS - shipped.oversight_operations)
    missing_admin = sorted(ADMIN_OPERATIONS - shipped.admin_operations)
    assert missing_auditor == [], f"add {missing_auditor} to oversight_operations (security/policy/rules.py)"
    assert missing_admin == [], f"add {missing_admin} to admin_operations (security/policy/rules.py)"
