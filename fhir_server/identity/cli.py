"""``kzfhir user ...``, ``kzfhir client ...`` and ``kzfhir auth rotate-key``: an administrator registers the
people and the applications the built-in authorization server knows (docs/identity.md)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from fhir_server.config import Settings
from fhir_server.identity.consent import revoke_consent
from fhir_server.identity.issuer import IdentityConfig
from fhir_server.identity.keys import rotate_key
from fhir_server.identity.registration import new_client, new_user
from fhir_server.identity.registry import Registry
from fhir_server.security.roles import ROLES


def _config(args: argparse.Namespace) -> IdentityConfig:
    overrides: dict[str, Any] = {}
    if getattr(args, "database", None):
        overrides["database"] = Path(args.database)
    return IdentityConfig.from_settings(Settings(**overrides))


def _fail(message: str) -> int:
    print(f"kzfhir: {message}", file=sys.stderr)
    return 2


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise ValueError("the passwords differ")
    return first


def _user_add(args: argparse.Namespace) -> int:
    try:
        user = new_user(args.username, _password(args), args.role, args.fhir_user, args.bin, iin=args.iin)
        Registry(_config(args).database).add_user(user, replace=args.replace)
    except ValueError as error:
        return _fail(str(error))
    print(f"user {user.username}: role {user.role}, fhirUser {user.fhir_user or '-'}, bin {user.bin or '-'}, "
          f"iin {user.iin or '-'}")
    return 0


def _consents(args: argparse.Namespace) -> int:
    for client_id, answer in Registry(_config(args).database).consents(args.username).items():
        print(f"{client_id}\t{' '.join(sorted(answer.approved))}")
    return 0


def _consent_revoke(args: argparse.Namespace) -> int:
    ended = revoke_consent(Registry(_config(args).database), args.username, args.client_id)
    if ended is None:
        return _fail(f"{args.username!r} has no consent for {args.client_id!r}")
    print(f"consent revoked; {ended} refresh-token chain(s) ended")
    return 0


def _user_list(args: argparse.Namespace) -> int:
    for user in Registry(_config(args).database).users():
        state = " (disabled)" if user.disabled else ""
        print(f"{user.username}\t{user.role}\t{user.fhir_user or '-'}\t{user.bin or '-'}{state}")
    return 0


def _user_disable(args: argparse.Namespace) -> int:
    if not Registry(_config(args).database).set_user_disabled(args.username, not args.enable):
        return _fail(f"no user {args.username!r}")
    return 0


def _client_add(args: argparse.Namespace) -> int:
    try:
        jwks = json.loads(Path(args.jwks).read_text(encoding="utf-8")) if args.jwks else None
        client = new_client(args.client_id, args.name or args.client_id, redirect_uris=args.redirect_uri or (),
                            scopes=args.scope or (), jwks=jwks, bin=args.bin, grant_types=args.grant,
                            may_introspect=args.introspect)
        Registry(_config(args).database).add_client(client, replace=args.replace)
    except (ValueError, OSError) as error:
        return _fail(str(error))
    print(f"client {client.client_id}: {client.auth_method}, grants {' '.join(client.grant_types)}, "
          f"scopes {' '.join(client.scopes)}, bin {client.bin or '-'}")
    return 0


def _client_list(args: argparse.Namespace) -> int:
    for client in Registry(_config(args).database).clients():
        state = " (disabled)" if client.disabled else ""
        print(f"{client.client_id}\t{client.auth_method}\t{' '.join(client.grant_types)}\t{client.bin or '-'}\t"
              f"{' '.join(client.scopes)}{state}")
    return 0


def _client_disable(args: argparse.Namespace) -> int:
    if not Registry(_config(args).database).set_client_disabled(args.client_id, not args.enable):
        return _fail(f"no client {args.client_id!r}")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    config = _config(args)
    keys = rotate_key(config.key_path)
    print(f"new signing key {keys.active.kid}; {len(keys.keys) - 1} older key(s) kept for verification. "
          "Restart the server to sign with it (it verifies with it at once)")
    return 0


def register(subparsers: Any) -> None:
    database = {"help": "the FHIR database the authorization server sits beside (default $KZFHIR_DATABASE)"}
    user = subparsers.add_parser("user", help="users of the built-in authorization server (docs/identity.md)")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser("add", help="register a user (asks for the password)")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=sorted(ROLES))
    add.add_argument("--fhir-user", help="Patient/…, Practitioner/…, PractitionerRole/… or RelatedPerson/…")
    add.add_argument("--bin", help="the organisation (12-digit BIN) a practitioner works for")
    add.add_argument("--iin", help="the person's 12-digit IIN (EDS-certificate and eGov sign-in find them by it)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    add.add_argument("--replace", action="store_true", help="replace an existing user of that name")
    add.add_argument("--database", **database)
    add.set_defaults(func=_user_add)
    listing = user_sub.add_parser("list", help="the registered users")
    listing.add_argument("--database", **database)
    listing.set_defaults(func=_user_list)
    disable = user_sub.add_parser("disable", help="refuse a user's sign-in (and their refresh tokens)")
    disable.add_argument("username")
    disable.add_argument("--enable", action="store_true", help="allow it again")
    disable.add_argument("--database", **database)
    disable.set_defaults(func=_user_disable)
    consents = user_sub.add_parser("consents", help="the apps a user approved on the consent screen")
    consents.add_argument("username")
    consents.add_argument("--database", **database)
    consents.set_defaults(func=_consents)
    revoke = user_sub.add_parser("consent-revoke", help="forget a user's consent for an app and end its sessions")
    revoke.add_argument("username")
    revoke.add_argument("client_id")
    revoke.add_argument("--database", **database)
    revoke.set_defaults(func=_consent_revoke)

    client = subparsers.add_parser("client", help="applications of the built-in authorization server")
    client_sub = client.add_subparsers(dest="client_command", required=True)
    add = client_sub.add_parser("add", help="register a SMART app or a backend service")
    add.add_argument("client_id")
    add.add_argument("--name", help="shown on the sign-in page")
    add.add_argument("--redirect-uri", action="append", help="an app's redirect URI (repeatable)")
    add.add_argument("--scope", action="append", help="a scope the client may be granted (repeatable)")
    add.add_argument("--jwks", help="the client's public JWKS file: private_key_jwt (RS384/ES384)")
    add.add_argument("--bin", help="a backend service's organisation (12-digit BIN): its tokens' bin claim")
    add.add_argument("--grant", action="append",
                     choices=["authorization_code", "refresh_token", "client_credentials"],
                     help="grant types (default: from --redirect-uri and --bin)")
    add.add_argument("--introspect", action="store_true", help="may introspect any token (a resource server)")
    add.add_argument("--replace", action="store_true", help="replace an existing client of that id")
    add.add_argument("--database", **database)
    add.set_defaults(func=_client_add)
    listing = client_sub.add_parser("list", help="the registered clients")
    listing.add_argument("--database", **database)
    listing.set_defaults(func=_client_list)
    disable = client_sub.add_parser("disable", help="refuse a client (its tokens stop being issued)")
    disable.add_argument("client_id")
    disable.add_argument("--enable", action="store_true", help="allow it again")
    disable.add_argument("--database", **database)
    disable.set_defaults(func=_client_disable)

    auth = subparsers.add_parser("auth", help="the built-in authorization server's keys")
    auth_sub = auth.add_subparsers(dest="auth_command", required=True)
    rotate = auth_sub.add_parser("rotate-key", help="a new signing key; the old ones keep verifying")
    rotate.add_argument("--database", **database)
    rotate.set_defaults(func=_rotate)
