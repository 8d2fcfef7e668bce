"""The ``kzfhir`` command: serve, and the tools of the other packages (signing, security ...)."""

from __future__ import annotations

import argparse
import copy
import importlib
import sys
from typing import Any

from pydantic import ValidationError

from fhir_server import __version__
from fhir_server.cli_errors import OneLineParser, fail, settings_error
from fhir_server.i18n import msg
from fhir_server.i18n.locale import say
from fhir_server.serve_options import LOG_LEVELS, port, workers

#: Which module registers each subcommand. Only the one a command line names is imported (issue 13:
#: `kzfhir token` took ~3 s importing the signing and conformance packages it never uses).
COMMANDS = {"token": "fhir_server.security.cli", "audit": "fhir_server.security.cli",
            "sign": "signing.cli", "verify": "signing.cli", "pki": "signing.cli",
            "conformance": "conformance.cli", "load": "fhir_server.loader.cli",
            "user": "fhir_server.identity.cli", "client": "fhir_server.identity.cli",
            "auth": "fhir_server.identity.cli",
            "db": "fhir_server.storage.cli",
            "migrate": "fhir_server.storage.cli"}


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from fhir_server.api.app import create_app
    from fhir_server.api.operator import configure_logging
    from fhir_server.config import Settings
    from fhir_server.serve_options import open_mode_database

    overrides: dict[str, object] = {}
    if args.database:
        overrides["database"] = args.database  # a path, sqlite:///path or postgresql:// (config.py)
    if args.base_url:
        overrides["base_url"] = args.base_url
    if args.require_kz_profiles:
        overrides["require_kz_profiles"] = True
    if args.open:
        overrides["security_enabled"] = False
        open_mode_database(overrides)
    overrides.update({k: v for k, v in (("host", args.host), ("port", args.port), ("workers", args.workers))
                      if v is not None})
    settings = Settings(**overrides)  # type: ignore[arg-type]  # flags over KZFHIR_* over defaults
    from fhir_server.backends import is_postgres
    from fhir_server.security.setup import build_verifier
    from fhir_server.storage.sqlite.lock import DatabaseInUse, check_free
    from fhir_server.workers import supervise, uvicorn_options

    if settings.workers > 1:
        if not is_postgres(settings.database):  # issue 11 §3: SQLite stays single-process
            return fail("kzfhir serve", msg("cli.workers_need_postgres", workers=settings.workers))
        try:
            build_verifier(settings)  # the signing keys exist before N workers would each make one
        except ValueError as exc:
            return fail("kzfhir serve", str(exc))
        _announce(settings)
        return supervise(overrides, settings.workers, args.log_level)
    try:
        check_free(str(settings.database))  # one server per SQLite file (issue 11 §3)
        app = create_app(settings)
    except (ValueError, DatabaseInUse) as exc:  # a configuration the server refuses to start with
        return fail("kzfhir serve", str(exc))
    configure_logging(settings)
    _announce(settings)
    uvicorn.run(app, **uvicorn_options(settings, args.log_level))
    return 0


def _announce(settings: Any) -> None:
    from fhir_server.security.setup import development_notice

    notice = development_notice(settings)
    if notice:
        print(say(notice), file=sys.stderr, flush=True)
    print(say(msg("cli.serving", url=f"http://{settings.host}:{settings.port}", database=settings.database)),
          flush=True)


def log_config(level: str) -> dict[str, Any]:
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    for name in ("kzfhir", "fhir_server"):  # request lines (api/middleware.py), faults (api/errors.py)
        config["loggers"][name] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line; ``only`` (a key of ``COMMANDS``) registers just that subcommand besides serve."""
    parser = OneLineParser(prog="kzfhir", description=say(msg("cli.description")))
    parser.add_argument("--version", action="version", version=f"kzfhir {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help=say(msg("cli.serve.help")))
    serve.add_argument("--host", help=say(msg("cli.serve.host")))
    serve.add_argument("--port", type=port, help=say(msg("cli.serve.port")))
    serve.add_argument("--database", help=say(msg("cli.serve.database")))
    serve.add_argument("--base-url", help=say(msg("cli.serve.base_url")))
    serve.add_argument("--log-level", default="info", choices=LOG_LEVELS)
    serve.add_argument("--require-kz-profiles", action="store_true", help=say(msg("cli.serve.require_kz_profiles")))
    serve.add_argument("--open", action="store_true", help=say(msg("cli.serve.open")))
    serve.add_argument("--workers", type=workers, help=say(msg("cli.serve.workers")))
    serve.set_defaults(func=_serve)
    modules = dict.fromkeys(COMMANDS.values()) if only is None else dict.fromkeys([COMMANDS[only]])
    for name in modules:
        importlib.import_module(name).register(sub)
    if "verify" in sub.choices:
        _verify_reports_too(sub)
    return parser


def _verify_reports_too(sub: argparse._SubParsersAction) -> None:
    """``kzfhir verify`` also checks a signed conformance report (issue 18): a report goes to the kit,
    any other file to the signing package's verifier as before."""
    verify = sub.choices["verify"]
    fallback = verify.get_default("func")
    from conformance import cli as conformance_cli

    verify.set_defaults(func=lambda args: conformance_cli.verify_command(args, fallback))


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    command = next((w for w in words if not w.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except ValidationError as exc:  # a KZFHIR_* variable that does not parse
        return fail("kzfhir", settings_error(exc))
    return result


if __name__ == "__main__":
    sys.exit(main())
