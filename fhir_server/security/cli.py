"""``kzfhir token`` and ``kzfhir audit verify``: registered by ``fhir_server.cli`` via ``register``.

    kzfhir token --role practitioner --fhir-user Practitioner/1 [--scope user/*.rs ...] [--bin BIN]
    kzfhir audit verify --database data/kzfhir.sqlite|postgresql://… [--anchor SEQ:HASH ...] [--json]

Each subcommand sets ``func(args) -> int`` (the exit code), the convention of ``fhir_server.cli``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

from fhir_server.security.auth.claims import context_from_claims
from fhir_server.security.auth.dev_keys import DEV_JWKS_PATH, issue_dev_token
from fhir_server.security.auth.errors import AuthError
from fhir_server.security.roles import ROLES


def _token(args: argparse.Namespace) -> int:
    extra: dict[str, Any] = {}
    for claim in ("purpose_of_use", "legal_basis", "on_behalf_of"):
        if getattr(args, claim):
            extra[claim] = getattr(args, claim)
    if args.patient:
        extra["patient"] = args.patient
    token = issue_dev_token(
        args.role,
        args.fhir_user,
        args.scope or None,
        bin=args.bin,
        ttl_seconds=args.ttl,
        break_glass=args.break_glass,
        key_path=Path(args.key),
        extra_claims=extra,
    )
    try:  # the server's own reading of the claims: a token it would refuse is not issued (issue 13)
        context_from_claims(_claims_of(token))
    except AuthError as error:
        print(f"kzfhir token: the server would refuse this token: {error.reason}", file=sys.stderr)
        return 2
    print(token)
    return 0


def _claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def _anchor(text: str) -> tuple[int, str]:
    from fhir_server.security.audit.chain import parse_anchor  # one rule for the CLI and $audit-verify

    try:
        return parse_anchor(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _audit_verify(args: argparse.Namespace) -> int:
    # imported here: `kzfhir token` should not pay for the audit and storage packages
    from fhir_server.backends import is_postgres, verify_postgres_database, verify_sqlite_file

    if is_postgres(args.database):  # the chain of a PostgreSQL database, read-only (issue 11)
        try:
            report, pending = verify_postgres_database(args.database, dict(args.anchor or []))
        except ConnectionError as exc:
            print(f"cannot verify the PostgreSQL database: {exc}", file=sys.stderr)
            return 2
        staged_note = "reads are staged in read_audit and not chained yet"
    else:
        database = Path(args.database)
        if not database.exists():
            print(f"no such database: {database}", file=sys.stderr)
            return 2
        report, pending = verify_sqlite_file(str(database), dict(args.anchor or []))
        staged_note = "journal lines (reads and templates) are not chained yet"
    if args.json:
        print(json.dumps({**{name: getattr(report, name) for name in report.__slots__}, "unchained_reads": pending}))
    elif report.ok:
        print(f"audit chain intact: {report.rows_checked} events, head seq {report.head_seq} hash {report.head_hash}")
    else:
        print(f"audit chain BROKEN at seq {report.first_broken_seq}: {report.problem}")
        print(f"last good row: seq {report.head_seq} hash {report.head_hash}")
    if pending and not args.json:
        print(f"note: {pending} {staged_note}; a running server chains them within a second, a stopped one when "
              "it next starts")
    return 0 if report.ok else 1


def register(subparsers: Any) -> None:
    """Add ``token`` and ``audit`` (with ``verify``) to the ``kzfhir`` argument parser."""
    token = subparsers.add_parser("token", help="issue a development access token (dev key)")
    token.add_argument("--role", required=True, choices=sorted(ROLES))
    token.add_argument("--fhir-user", help="FHIR identity, e.g. Practitioner/1 or Patient/7")
    token.add_argument("--scope", action="append", help="SMART scope (repeatable); default depends on role")
    token.add_argument("--bin", help="organisation BIN (12 digits)")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    token.add_argument("--break-glass", help="break-glass reason: emergency access for practitioners")
    token.add_argument("--purpose-of-use", help="v3 PurposeOfUse code, e.g. TREAT")
    token.add_argument("--legal-basis", help="legal basis for the legal-exception role")
    token.add_argument("--on-behalf-of", help="principal the caller acts for, e.g. Patient/7")
    token.add_argument("--patient", help="SMART launch context patient id for patient/ scopes")
    token.add_argument("--key", default=os.environ.get("KZFHIR_DEV_KEY_PATH", str(DEV_JWKS_PATH)),
                       help="dev JWKS file (created on first use); default $KZFHIR_DEV_KEY_PATH, as the server")
    token.set_defaults(func=_token)

    audit = subparsers.add_parser("audit", help="audit trail tools")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="verify the tamper-evident audit hash chain")
    verify.add_argument("--database", required=True,
                        help="the database holding audit_chain: a SQLite file or a postgresql:// URL")
    verify.add_argument("--anchor", action="append", type=_anchor, help="SEQ:HASH recorded earlier (repeatable)")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(func=_audit_verify)
