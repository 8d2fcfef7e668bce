"""From HTTP headers to RequestContext; development keys and tokens; ``kzfhir token``."""

from __future__ import annotations

import argparse
import base64
import json
import stat
import time
from pathlib import Path

import pytest

from fhir_server.security.auth import (
    AuthError,
    TokenVerifier,
    context_from_request,
    ensure_dev_key,
    issue_dev_token,
)
from fhir_server.security.cli import register


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "dev-jwks.json"


@pytest.fixture
def verifier(key_path: Path) -> TokenVerifier:
    ensure_dev_key(key_path)
    return TokenVerifier.for_development(key_path)


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **{k.replace("_", "-"): v for k, v in headers.items()}}


def test_dev_key_is_created_once_private_and_reused(key_path: Path) -> None:
    first = ensure_dev_key(key_path)
    second = ensure_dev_key(key_path)
    assert first.kid == second.kid
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert json.loads(key_path.read_text())["keys"][0]["crv"] == "P-256"


@pytest.mark.req("TM-04")
async def test_dev_token_is_accepted_by_the_dev_verifier(key_path: Path, verifier: TokenVerifier) -> None:
    token = issue_dev_token("practitioner", "Practitioner/1", ["user/*.rs"], bin="940140000385", key_path=key_path)
    context = await context_from_request(bearer(token), "192.0.2.1", verifier)
    assert (context.role, context.fhir_user, context.organization_bin) == (
        "practitioner",
        "Practitioner/1",
        "940140000385",
    )
    assert context.client_ip == "192.0.2.1"
    assert context.scopes == ("user/*.rs",)


async def test_dev_token_gets_role_default_scopes(key_path: Path, verifier: TokenVerifier) -> None:
    token = issue_dev_token("patient", "Patient/7", key_path=key_path)
    context = await context_from_request(bearer(token), None, verifier)
    assert context.scopes == ("patient/*.cruds",)


@pytest.mark.req("AC-12")
async def test_missing_token_is_refused_unless_anonymous_access_is_on(verifier: TokenVerifier) -> None:
    with pytest.raises(AuthError, match="authentication required"):
        await context_from_request({}, "192.0.2.1", verifier)
    anonymous = await context_from_request({}, "192.0.2.1", verifier, allow_anonymous=True)
    assert not anonymous.authenticated and anonymous.role is None


async def test_non_bearer_authorization_is_refused(verifier: TokenVerifier) -> None:
    with pytest.raises(AuthError, match="Bearer"):
        await context_from_request({"authorization": "Basic dXNlcjpwYXNz"}, None, verifier)


async def test_security_headers_are_read_case_insensitively(key_path: Path, verifier: TokenVerifier) -> None:
    token = issue_dev_token("legal-exception", "Practitioner/9", key_path=key_path)
    headers = {
        "authorization": f"Bearer {token}",
        "x-purpose-of-use": "HLEGAL",
        "X-LEGAL-BASIS": "court order 2-123/2025",
        "X-Request-Id": "req-42",
    }
    context = await context_from_request(headers, None, verifier)
    assert (context.purpose_of_use, context.legal_basis, context.request_id) == (
        "HLEGAL",
        "court order 2-123/2025",
        "req-42",
    )


async def test_unusable_request_id_is_replaced(key_path: Path, verifier: TokenVerifier) -> None:
    token = issue_dev_token("patient", "Patient/7", key_path=key_path)
    context = await context_from_request(bearer(token, **{"X-Request-Id": "bad id; drop table"}), None, verifier)
    assert context.request_id != "bad id; drop table"


@pytest.mark.req("AC-02")
async def test_break_glass_header_is_limited_to_the_window_after_issue(key_path: Path) -> None:
    issued = int(time.time())
    token = issue_dev_token("practitioner", "Practitioner/1", key_path=key_path, ttl_seconds=7200, now=issued)
    verifier = TokenVerifier.for_development(key_path, break_glass_window_seconds=900, max_lifetime_seconds=7200)
    context = await context_from_request(
        bearer(token, **{"X-Break-Glass-Reason": "unconscious, no ID"}), None, verifier
    )
    assert context.break_glass_reason == "unconscious, no ID"
    assert context.break_glass_until == issued + 900


@pytest.mark.req("AC-02")
async def test_break_glass_header_never_outlives_the_token(key_path: Path, verifier: TokenVerifier) -> None:
    issued = int(time.time())
    token = issue_dev_token("practitioner", "Practitioner/1", key_path=key_path, ttl_seconds=600, now=issued)
    context = await context_from_request(bearer(token, **{"X-Break-Glass-Reason": "stroke"}), None, verifier)
    assert context.break_glass_until == issued + 600


async def test_header_with_control_characters_is_refused(key_path: Path, verifier: TokenVerifier) -> None:
    token = issue_dev_token("practitioner", "Practitioner/1", key_path=key_path)
    with pytest.raises(AuthError, match="printable"):
        await context_from_request(bearer(token, **{"X-Break-Glass-Reason": "a\x00b"}), None, verifier)


async def test_dev_token_with_break_glass_claim_carries_reason(key_path: Path, verifier: TokenVerifier) -> None:
    token = issue_dev_token("practitioner", "Practitioner/1", key_path=key_path, break_glass="trauma bay")
    context = await verifier.verify(token)
    assert context.break_glass_reason == "trauma bay"
    assert context.break_glass_until is not None and context.break_glass_until <= time.time() + 3600


def test_kzfhir_token_command_prints_a_verifiable_token(key_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="kzfhir")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        ["token", "--role", "patient", "--fhir-user", "Patient/7", "--scope", "patient/*.rs", "--key", str(key_path)]
    )
    assert args.func(args) == 0
    token = capsys.readouterr().out.strip()
    assert token.count(".") == 2
    body = json.loads(_b64(token.split(".")[1]))
    assert (body["role"], body["fhirUser"], body["scope"]) == ("patient", "Patient/7", "patient/*.rs")


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
