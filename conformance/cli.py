"""``kzfhir conformance run|compare`` (and ``python -m conformance run``), and the report branch of
``kzfhir verify``.

``run`` exits 0 (conformant, or for ``--only`` the checks run passed), 1 (a check failed or a critical
requirement was not demonstrated) or 2 (the kit could not run); ``compare`` exits 1 when something
regressed; ``verify`` of a report exits 0 (signature valid and trusted, renderings intact), 1 or 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from conformance.compare import compare, regressions
from conformance.identities import Cast, Minter, dev_minter, load_cast
from conformance.registry import GROUPS
from conformance.report import EXIT_FAIL, EXIT_KIT_ERROR, EXIT_PASS, Report
from conformance.runner import run
from conformance.signature import (
    detached_path,
    is_report,
    sign_file,
    sign_report,
    signer_name,
    verify_file,
    verify_report,
)
from signing import Expectations, RevocationPolicy, Signer, SigningError, TrustStore, load_signer
from signing.report import print_status

__all__ = ["build_parser", "main", "register", "verify_command"]


def _header(value: str) -> tuple[str, str]:
    name, sep, content = value.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME:VALUE, got {value!r}")
    return name.strip(), content.strip()


def _add_run(sub: Any) -> None:
    runner = sub.add_parser("run", help="run the checks against a FHIR R4 base URL and write a report")
    runner.add_argument("--base", required=True, help="FHIR base URL, e.g. https://mis.example.kz/fhir")
    tokens = runner.add_mutually_exclusive_group()
    tokens.add_argument("--token", help="writer (MIS back-end) bearer token (prefer --token-file)")
    tokens.add_argument("--token-file", type=Path, help="file holding the writer's bearer token")
    people = runner.add_mutually_exclusive_group()
    people.add_argument("--identities", type=Path, help="JSON file of test identities for the access checks")
    people.add_argument("--dev-key", type=Path, help="kzfhir development key: the kit creates the test "
                                                     "patients and practitioners and mints their tokens")
    runner.add_argument("--header", action="append", type=_header, default=[], metavar="NAME:VALUE",
                        help="extra request header (repeatable)")
    runner.add_argument("--only", action="append", metavar="GROUP",
                        help=f"run only this group or check ID (repeatable; not a certification); "
                             f"groups: {', '.join(GROUPS)}")
    runner.add_argument("--report-json", type=Path, help="write the machine-readable report here")
    runner.add_argument("--report-md", type=Path, help="write the Markdown report here")
    runner.add_argument("--report-html", type=Path, help="write the HTML report here")
    runner.add_argument("--previous", type=Path, help="an earlier JSON report: say what regressed since")
    runner.add_argument("--sign-key", type=Path, help="EDS key (PEM or PKCS#12) to sign the JSON report with "
                                                            "(also writes REPORT.json.p7s, a detached signature)")
    runner.add_argument("--sign-cert", type=Path, help="the EDS certificate (PEM, may be followed by the chain)")
    runner.add_argument("--sign-password", help="key password (default: $KZFHIR_KEY_PASSWORD)")
    runner.add_argument("--operator", default="", help="who runs the kit, for the report (name, organisation)")
    runner.add_argument("--sample", type=int, default=20, help="records sampled per type (vendor-data)")
    runner.add_argument("--record-wait", type=float, default=15.0,
                        help="seconds to wait for audit records and notices (default 15)")
    runner.add_argument("--keep", action="store_true", help="leave the resources the kit created in place")
    runner.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    runner.set_defaults(func=_run_command)


def register(subparsers: Any) -> None:
    """Add ``conformance`` with ``run`` and ``compare`` to the ``kzfhir`` argument parser."""
    conformance = subparsers.add_parser("conformance", help="conformance kit: check any FHIR endpoint")
    sub = conformance.add_subparsers(dest="conformance_command", required=True)
    _add_run(sub)
    comparer = sub.add_parser("compare", help="what regressed between two JSON reports")
    comparer.add_argument("previous", type=Path)
    comparer.add_argument("current", type=Path)
    comparer.set_defaults(func=_compare_command)


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file is not None:
        return str(args.token_file.read_text(encoding="utf-8")).strip() or None
    return str(args.token) if args.token else None


def _identities(args: argparse.Namespace) -> tuple[Cast | None, Minter | None]:
    cast = load_cast(args.identities) if args.identities else None
    return cast, (dev_minter(args.dev_key) if args.dev_key else None)


def _signer(args: argparse.Namespace) -> Signer | None:
    if args.sign_key is None:
        return None
    if args.report_json is None:
        raise ValueError("--sign-key signs the JSON report: give --report-json too")
    password = args.sign_password if args.sign_password is not None else os.environ.get("KZFHIR_KEY_PASSWORD")
    return load_signer(args.sign_key, args.sign_cert, password=password)


def _summary_line(report: Report) -> str:
    counts = report.summary()
    parts = ", ".join(f"{counts[k]} {k}" for k in ("pass", "fail", "warning", "skipped", "error"))
    line = (f"conformance {report.base_url}: {counts['total']} checks: {parts}; {report.verdict}; "
            f"exit {report.exit_code}")
    return line + (f"\nkit error: {report.kit_error}" if report.kit_error else "")


async def _produce(args: argparse.Namespace, transport: httpx.AsyncBaseTransport | None) -> Report:
    cast, minter = _identities(args)
    signer = _signer(args)
    report = await run(args.base, token=_token(args), headers=dict(args.header), checks=args.only,
                       transport=transport, keep=args.keep, timeout=args.timeout, cast=cast, minter=minter,
                       sample_count=args.sample, record_wait=args.record_wait, operator=args.operator)
    if args.previous:
        previous = json.loads(args.previous.read_text(encoding="utf-8"))
        report = replace(report, comparison=compare(previous, report.to_dict()))
    await _write(args, report, signer)
    return report


async def _write(args: argparse.Namespace, report: Report, signer: Signer | None) -> None:
    renderings: dict[str, Path] = {}
    if args.report_md:
        args.report_md.write_text(report.to_markdown(), encoding="utf-8")
        renderings["markdown"] = args.report_md
    if args.report_html:
        args.report_html.write_text(report.to_html(signer_name(signer) if signer else None), encoding="utf-8")
        renderings["html"] = args.report_html
    if args.report_json:
        data = report.to_dict()
        if signer is not None:
            data = await sign_report(data, signer, renderings)
        content = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
        args.report_json.write_bytes(content)
        if signer is not None:
            detached_path(args.report_json).write_bytes(await sign_file(content, signer))


def _run_command(args: argparse.Namespace, transport: httpx.AsyncBaseTransport | None = None) -> int:
    try:
        report = asyncio.run(_produce(args, transport))
    except (OSError, ValueError, SigningError) as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return EXIT_KIT_ERROR
    for result in report.results:
        if result.status.value in ("fail", "error"):
            print(f"{result.status.value.upper():7} {result.id}: {result.message}")
    for line in regressions(report.comparison or {}):
        print(line)
    print(_summary_line(report))
    return report.exit_code


def _compare_command(args: argparse.Namespace) -> int:
    try:
        previous, current = (json.loads(p.read_text(encoding="utf-8")) for p in (args.previous, args.current))
    except (OSError, ValueError) as exc:
        print(f"conformance compare: {exc}", file=sys.stderr)
        return EXIT_KIT_ERROR
    comparison = compare(previous, current)
    lost = regressions(comparison)
    for line in lost + [f"FIXED {c['kind']} {c['id']}: {c['from']} -> {c['to']}" for c in comparison["fixed"]]:
        print(line)
    print(f"{len(lost)} regressed, {len(comparison['fixed'])} fixed since {comparison['previousStarted']}")
    return EXIT_FAIL if lost else EXIT_PASS


def _trust(args: argparse.Namespace) -> TrustStore | None:
    if getattr(args, "trust", None) is None:
        return None
    return TrustStore.from_directory(args.trust, RevocationPolicy(mode=args.revocation, ocsp_url=args.ocsp_url))


def verify_command(args: argparse.Namespace, fallback: Callable[[argparse.Namespace], int]) -> int:
    """``kzfhir verify FILE``: a conformance report is verified here (signature, signer, renderings);
    any other file goes to the signing package's verifier (``fallback``)."""
    try:
        data = json.loads(args.file.read_bytes()) if args.file.suffix.lower() == ".json" else None
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict) or not is_report(data):
        return fallback(args)
    expect = Expectations(args.iin, args.bin)
    try:
        trust = _trust(args)
        checked = asyncio.run(verify_report(data, trust, args.file.parent, expect))
        detached = asyncio.run(verify_file(args.file, trust, expect))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_KIT_ERROR
    print(f"conformance report of {(data.get('target') or {}).get('baseUrl')} started {data.get('started')}: "
          f"{data.get('verdict')}")
    print_status(checked.status)
    for rendering in checked.renderings:
        print(f"  rendering:    {rendering.kind} {rendering.file}: {rendering.state}")
    if detached is not None:  # the report file's bytes, as a generic CMS tool checks them
        print(f"detached signature {detached_path(args.file).name} over the bytes of {args.file.name}:")
        print_status(detached)
    return EXIT_PASS if checked.ok and (detached is None or detached.ok) else EXIT_FAIL


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m conformance",
                                     description="FHIR conformance kit (Kazakhstan profiles and rules)")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: list[str] | None = None, *, transport: httpx.AsyncBaseTransport | None = None) -> int:
    """``python -m conformance conformance run --base URL ...`` is long, so the leading ``conformance``
    may be left out: ``python -m conformance run --base URL``. ``transport`` is for tests."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] != ["conformance"]:
        args_in = ["conformance", *args_in]
    args = build_parser().parse_args(args_in)
    if args.func is _run_command:
        return _run_command(args, transport)
    return int(args.func(args))
