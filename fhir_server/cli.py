"""The ``kzfhir`` command: serve, and the tools of the other packages (signing, security ...)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from conformance import cli as conformance_cli
from fhir_server.security import cli as security_cli
from signing import cli as signing_cli


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from fhir_server.api.app import create_app
    from fhir_server.config import Settings

    overrides: dict[str, object] = {}
    if args.database:
        overrides["database"] = Path(args.database)
    if args.base_url:
        overrides["base_url"] = args.base_url
    if args.require_kz_profiles:
        overrides["require_kz_profiles"] = True
    if args.open:
        overrides["security_enabled"] = False
    settings = Settings(host=args.host, port=args.port, **overrides)  # type: ignore[arg-type]
    app = create_app(settings)
    print(f"kzfhir serving FHIR R4 at http://{settings.host}:{settings.port} (database {settings.database})",
          flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level, access_log=False,
                loop="uvloop", http="httptools")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kzfhir", description="FHIR R4 server for Kazakhstan's digital health")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the FHIR server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--database", help="SQLite database file (default data/kzfhir.sqlite, created on start)")
    serve.add_argument("--base-url", help="public base URL used in Location headers and links")
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--require-kz-profiles", action="store_true",
                       help="national strict mode: KZ profiles mandatory (env KZFHIR_REQUIRE_KZ_PROFILES)")
    serve.add_argument("--open", action="store_true",
                       help="development/test mode without authentication, policy or audit (never in production)")
    serve.set_defaults(func=_serve)
    security_cli.register(sub)
    signing_cli.register(sub)
    _verify_reports_too(sub)
    conformance_cli.register(sub)
    return parser


def _verify_reports_too(sub: argparse._SubParsersAction) -> None:
    """``kzfhir verify`` also checks a signed conformance report (issue 18): a report goes to the kit,
    any other file to the signing package's verifier as before."""
    verify = sub.choices["verify"]
    fallback = verify.get_default("func")
    verify.set_defaults(func=lambda args: conformance_cli.verify_command(args, fallback))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
