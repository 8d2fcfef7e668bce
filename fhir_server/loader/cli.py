"""``kzfhir load``: registered by ``fhir_server.cli`` via ``register``.

    kzfhir load PATH... [--base URL | --database FILE [--open]] [--token T] [--concurrency N]
                        [--retries N] [--batch N] [--failures FILE] [--progress MODE] [--json]
    kzfhir load --demo [--base URL | --database FILE] [--dev-key FILE]

Exit codes: 0 everything loaded, 1 some resources failed (listed in the failures file), 2 the
command could not run (bad arguments, unreadable input, server unreachable).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx

from fhir_server.loader.progress import MODES, Progress
from fhir_server.loader.runner import FailureLog, Loader, Summary, backoff
from fhir_server.loader.sources import SourceError, discover
from fhir_server.loader.target import in_process, remote
from fhir_server.storage.sqlite.lock import DatabaseInUse

# The server `make run` starts: the same KZFHIR_HOST/KZFHIR_PORT as `kzfhir serve` (docs/configuration.md).
DEFAULT_BASE = f"http://{os.environ.get('KZFHIR_HOST') or '127.0.0.1'}:{os.environ.get('KZFHIR_PORT') or 8080}"


class LoadError(Exception):
    """Reported as one line on stderr, exit 2."""


def _positive(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def _count(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return int(text)


def _target(args: argparse.Namespace, token: str | None) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    if args.database:
        return in_process(Path(args.database), token, open_mode=args.open)
    if args.open:
        raise LoadError("--open applies to --database only: a server's security is the server's setting")
    return remote(args.base, token, args.concurrency)


async def _reachable(client: httpx.AsyncClient, base: str, retries: int) -> None:
    """The server answers at all (any status: metadata may need a token elsewhere); a server still
    starting is waited for as a transient failure."""
    for attempt in range(retries + 1):
        try:
            await client.get("metadata", headers={"Accept": "application/fhir+json"}, timeout=10)
            return
        except httpx.TransportError as exc:
            if attempt == retries:
                raise LoadError(f"cannot reach {base}: {exc or type(exc).__name__}") from None
            await asyncio.sleep(backoff(None, attempt))


async def _load(args: argparse.Namespace) -> Summary:
    files = discover([Path(p) for p in args.paths])
    summary = Summary()
    failures = FailureLog(Path(args.failures), summary)
    async with _target(args, args.token) as client:
        if not args.database:
            await _reachable(client, args.base, args.retries)
        progress = Progress(sum(p.stat().st_size for p in files), args.progress)
        loader = Loader(client, concurrency=args.concurrency, retries=args.retries, batch=args.batch,
                        progress=progress, failures=failures, summary=summary)
        try:
            await loader.run(files)
        finally:
            progress.close()
            failures.close()
    return summary


def _command(args: argparse.Namespace) -> int:
    try:
        if args.demo:
            from fhir_server.demo.cli import run_demo

            return run_demo(args)
        if not args.paths:
            raise LoadError("name the files or folders to load, or --demo for the sample dataset")
        summary = asyncio.run(_load(args))
    except (LoadError, SourceError, DatabaseInUse) as exc:  # DatabaseInUse: a server holds --database
        print(f"kzfhir load: {exc}", file=sys.stderr)
        return 2
    if args.json:
        import json

        print(json.dumps(summary.as_dict()))
    else:
        print(summary.text())
    return 1 if summary.failed else 0


def register(subparsers: Any) -> None:
    load = subparsers.add_parser(
        "load", help="load Bundles, resources and NDJSON into a FHIR server or a database",
        description="Load transaction/batch Bundles (sent as they are), single resources and NDJSON files "
        "(one resource a line), .gz or not, files or folders, into any FHIR server (--base) or straight into "
        "a kzfhir database (--database, through the server's own write path).")
    load.add_argument("paths", nargs="*", metavar="PATH", help="files or folders (.json, .ndjson, .jsonl, + .gz)")
    where = load.add_mutually_exclusive_group()
    where.add_argument("--base", default=DEFAULT_BASE,
                       help="FHIR base URL (default http://$KZFHIR_HOST:$KZFHIR_PORT, else http://127.0.0.1:8080)")
    where.add_argument("--database", metavar="FILE", help="a kzfhir SQLite database, loaded in-process")
    load.add_argument("--open", action="store_true",
                      help="with --database: security off (no policy, no audit; development databases only)")
    load.add_argument("--token", default=os.environ.get("KZFHIR_TOKEN"),
                      help="bearer token (default $KZFHIR_TOKEN)")
    load.add_argument("--concurrency", type=_positive, default=4, help="requests in flight at once (default 4)")
    load.add_argument("--retries", type=_count, default=5,
                      help="retries of a transient failure: unreachable, 408/429/502/503/504 (default 5)")
    load.add_argument("--batch", type=_positive, default=1,
                      help="send single resources N at a time as batch Bundles (default 1: one request each)")
    load.add_argument("--failures", default="load-failures.ndjson", metavar="FILE",
                      help="where failed resources are written, one JSON object a line (default %(default)s)")
    load.add_argument("--progress", choices=MODES, default="auto",
                      help="progress display: a bar on a terminal (auto), bar, lines, none")
    load.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    load.add_argument("--demo", action="store_true",
                      help="load the Kazakhstan sample dataset under the secure default and print tokens to use")
    load.add_argument("--dev-key", metavar="FILE",
                      help="with --demo: the server's development key (default $KZFHIR_DEV_KEY_PATH or "
                      "data/dev-jwks.json, as the server)")
    load.add_argument("--tokens", metavar="FILE",
                      help="with --demo: also write the tokens as shell `export` lines to FILE")
    load.set_defaults(func=_command)
