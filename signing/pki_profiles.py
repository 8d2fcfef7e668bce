"""The identities of the test PKI: which certificates exist and what each one is for (kz-domain §5.1-5.2).

IINs are the checksum-invalid ones NCA test certificates use (kz-domain §1.3), so no real person is named.
"""

from __future__ import annotations

from dataclasses import dataclass

PASSWORD = "kzfhir-test"
ORG_BIN = "123456789021"
ORG_NAME = "ГКП на ПХВ «Тестовая поликлиника»"
_ROLE_INDIVIDUAL, _ROLE_EMPLOYEE, _ROLE_HEAD = (
    "1.2.398.3.3.4.1.1",
    "1.2.398.3.3.4.1.2.5",
    "1.2.398.3.3.4.1.2.1",
)
_POLICY_SIGN_PERSON, _POLICY_SIGN_ORG, _POLICY_AUTH_PERSON = (
    "1.2.398.3.3.2.3",
    "1.2.398.3.3.2.1",
    "1.2.398.3.3.2.4",
)


@dataclass(frozen=True, slots=True)
class LeafSpec:
    """One end-entity certificate of the test PKI."""

    name: str
    purpose: str  # what tests and demos use it for
    iin: str
    surname: str
    given: str
    bin: str | None = None
    key: str = "rsa"  # rsa | ec | gost
    auth_only: bool = False
    roles: tuple[str, ...] = (_ROLE_INDIVIDUAL,)
    policy: str = _POLICY_SIGN_PERSON
    valid_from_days: int = -1
    valid_days: int = 365
    revoked: bool = False
    rogue: bool = False


LEAVES: tuple[LeafSpec, ...] = (
    LeafSpec("doctor", "valid RSA-2048 signing certificate of a doctor", "123456789011", "ТЕСТОВ", "ДОКТОР"),
    LeafSpec(
        "doctor-ec", "valid ECDSA P-256 signing certificate", "123456789012", "ТЕСТОВА", "ВРАЧ", key="ec"
    ),
    LeafSpec(
        "employee",
        "employee of a medical organisation (IIN + BIN)",
        "123456789013",
        "СОТРУДНИКОВ",
        "ТЕСТ",
        bin=ORG_BIN,
        roles=(_ROLE_EMPLOYEE,),
        policy=_POLICY_SIGN_ORG,
    ),
    LeafSpec(
        "organisation",
        "legal-entity certificate of the organisation's head",
        "123456789014",
        "РУКОВОДИТЕЛЕВ",
        "ТЕСТ",
        bin=ORG_BIN,
        roles=(_ROLE_HEAD,),
        policy=_POLICY_SIGN_ORG,
    ),
    LeafSpec(
        "doctor-auth",
        "authentication-only certificate (must be refused)",
        "123456789011",
        "ТЕСТОВ",
        "ДОКТОР",
        auth_only=True,
        policy=_POLICY_AUTH_PERSON,
    ),
    LeafSpec("expired", "expired certificate", "123456789015", "ИСТЕКШИЙ", "ТЕСТ", valid_from_days=-730),
    LeafSpec(
        "not-yet-valid",
        "certificate valid only from next year",
        "123456789016",
        "БУДУЩИЙ",
        "ТЕСТ",
        valid_from_days=365,
    ),
    LeafSpec(
        "revoked",
        "certificate listed on the intermediate CA's CRL",
        "123456789017",
        "ОТОЗВАННЫЙ",
        "ТЕСТ",
        revoked=True,
    ),
    LeafSpec(
        "untrusted",
        "certificate from a root outside the trust store",
        "123456789018",
        "ЧУЖОЙ",
        "ТЕСТ",
        rogue=True,
    ),
    LeafSpec(
        "doctor-gost",
        "GOST R 34.10-2015 (256) signing certificate",
        "123456789019",
        "ГОСТОВ",
        "ТЕСТ",
        key="gost",
    ),
)
