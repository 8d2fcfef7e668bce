"""``kzfhir conformance run`` (and ``python -m conformance run``): run the kit, write the reports,
exit 0 (all passed, warnings allowed), 1 (a check failed) or 2 (the kit could not run)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import httpx

from conformance.registry import GROUPS
from conformance.report import EXIT_KIT_ERROR, Report
from conformance.runner import run

__all__ = ["build_parser", "main", "register"]


def _header(value: str) -> tuple[str, str]:
    name, sep, content = value.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME:VALUE, got {value!r}")
    return name.strip(), content.strip()


def register(subparsers: Any) -> None:
    """Add ``conformance`` with its ``run`` sub-command to the ``kzfhir`` argument parser."""
    conformance = subparsers.add_parser("conformance", help="conformance kit: check any FHIR endpoint")
    sub = conformance.add_subparsers(dest="conformance_command", required=True)
    runner = sub.add_parser("run", help="run the checks against a FHIR R4 base URL and write a report")
    runner.add_argument("--base", required=True, help="FHIR base URL, e.g. https://mis.example.kz/fhir")
    tokens = runner.add_mutually_exclusive_group()
    tokens.add_argument("--token", help="bearer token (prefer --token-file: command lines get logged)")
    tokens.add_argument("--token-file", type=Path, help="file holding the bearer token")
    runner.add_argument("--header", action="append", type=_header, default=[], metavar="NAME:VALUE",
                        help="extra request header (repeatable)")
    runner.add_argument("--only", action="append", metavar="GROUP",
                        help=f"run only this group or check ID (repeatable); groups: {', '.join(GROUPS)}")
    runner.add_argument("--report-json", type=Path, help="write the machine-readable report here")
    runner.add_argument("--report-md", type=Path, help="write the human-readable Markdown report here")
    runner.add_argument("--keep", action="store_true", help="leave the resources the kit created in place")
    runner.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    runner.set_defaults(func=_run_command)


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file is not None:
        return str(args.token_file.read_text(encoding="utf-8")).strip() or None
    return str(args.token) if args.token else None


def _summary_line(report: Report) -> str:
    counts = report.summary()
    parts = ", ".join(f"{counts[k]} {k}" for k in ("pass", "fail", "warning", "skipped", "error"))
    line = f"conformance {report.base_url}: {counts['total']} checks: {parts}; exit {report.exit_code}"
    return line + (f"\nkit error: {report.kit_error}" if report.kit_error else "")


def _run_command(args: argparse.Namespace, transport: httpx.AsyncBaseTransport | None = None) -> int:
    try:
        token = _token(args)
        report = asyncio.run(run(args.base, token=token, headers=dict(args.header), checks=args.only,
                                 transport=transport, keep=args.keep, timeout=args.timeout))
    except (OSError, ValueError) as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return EXIT_KIT_ERROR
    if args.report_json:
        args.report_json.write_text(report.to_json(), encoding="utf-8")
    if args.report_md:
        args.report_md.write_text(report.to_markdown(), encoding="utf-8")
    for result in report.results:
        if result.status.value in ("fail", "error"):
            print(f"{result.status.value.upper():7} {result.id}: {result.message}")
    print(_summary_line(report))
    return report.exit_code


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
    return _run_command(args, transport)
