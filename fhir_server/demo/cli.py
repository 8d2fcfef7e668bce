"""``kzfhir load --demo``: the sample dataset into a server under the secure default, then the tokens
to look at it with (issue 13: "a newcomer in the secure default sees a working system")."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from datetime import date
from pathlib import Path

import httpx

from fhir_server.demo import dataset, steps
from fhir_server.demo.steps import DemoError, DemoResult
from fhir_server.loader.target import in_process, remote
from fhir_server.security.auth import issue_dev_token

TOKEN_SECONDS = 3600


def _dev_key(args: argparse.Namespace) -> Path:
    if args.dev_key:
        return Path(args.dev_key)
    from fhir_server.config import Settings

    return Settings().dev_key_path  # the server's own default: KZFHIR_DEV_KEY_PATH or data/dev-jwks.json


def _tokens(key: Path, result: DemoResult) -> list[tuple[str, str, str]]:
    """(variable, token, who) for each role a newcomer tries."""
    patient = result.patients[0]

    def issue(role: str, user: str | None, **claims: str) -> str:
        return issue_dev_token(role, user, ttl_seconds=TOKEN_SECONDS, key_path=key, **claims)  # type: ignore[arg-type]

    return [
        ("SYSTEM_TOKEN", issue("system", None, bin=result.system_bin),
         f"system: the MIS of organisation BIN {result.system_bin}"),
        ("DOCTOR_TOKEN", issue("practitioner", steps.DOCTOR), f"practitioner: {steps.DOCTOR}"),
        ("PATIENT_TOKEN", issue("patient", patient.reference), f"patient: {patient.reference} ({patient.record.name})"),
        ("PATIENT_ID", patient.patient_id, "that patient's id"),
        ("ADMIN_TOKEN", issue("admin", "Practitioner/demo-nurse"), "admin: directory, audit, data-subject requests"),
    ]


def _report(base: str, result: DemoResult, tokens: list[tuple[str, str, str]]) -> str:
    counts = ", ".join(f"{n} {t}" for t, n in sorted(result.counts.items()))
    lines = [f"Loaded the Kazakhstan sample dataset into {base} (secure default): {counts}.", "Patients:"]
    for loaded in result.patients:
        iin = loaded.record.patient["identifier"][0]["value"]
        lines.append(f"  {loaded.reference:<46} {loaded.record.name} (IIN {iin})")
    lines.append(f"(Consents were registered {result.consent_recorded_as} by the MIS and made active by each "
                 "patient's own token.)")
    lines.append(f"Development tokens, valid {TOKEN_SECONDS // 60} minutes (`kzfhir token` issues more), "
                 "as shell variables:")
    for name, token, who in tokens:
        lines.append(f"  # {who}")
        lines.append(f"  export {name}={token}")
    if base.startswith("database "):
        lines.append(f"Serve it with `kzfhir serve --database {base.removeprefix('database ')}`, then try:")
        base = "http://127.0.0.1:8080"
    else:
        lines.append("Try:")
    lines += [f"  curl -s -H \"Authorization: Bearer $DOCTOR_TOKEN\" '{base}/Patient?_count=10'",
              f"  curl -s -H \"Authorization: Bearer $PATIENT_TOKEN\" "
              f"'{base}/{result.patients[0].reference}/$everything'"]
    return "\n".join(lines)


async def _run(args: argparse.Namespace, key: Path) -> tuple[str, DemoResult]:
    weeks = dataset.weeks_to(date.today())

    def issue(role: str, user: str | None, bin: str | None = None) -> str:
        return issue_dev_token(role, user, bin=bin, key_path=key)

    if args.database:
        async with in_process(Path(args.database), None, dev_key=key) as client:
            return f"database {args.database}", await steps.load(client, issue, weeks)
    async with remote(args.base, None, 1) as client:
        try:
            await client.get("metadata")
        except httpx.TransportError as exc:
            raise DemoError(f"cannot reach {args.base}: {exc or type(exc).__name__} (is `make run` running?)"
                            ) from None
        return args.base.rstrip("/"), await steps.load(client, issue, weeks)


def run_demo(args: argparse.Namespace) -> int:
    if args.paths or args.open:
        print("kzfhir load: --demo loads the shipped dataset into a secured server; it takes no PATH and no --open",
              file=sys.stderr)
        return 2
    key = _dev_key(args)
    if not args.database and not key.exists():
        print(f"kzfhir load: no development key at {key}: start the server first (`make run` creates it) or "
              "name the server's key with --dev-key", file=sys.stderr)
        return 2
    try:
        where, result = asyncio.run(_run(args, key))
    except DemoError as exc:
        print(f"kzfhir load --demo: {exc}", file=sys.stderr)
        return 2
    tokens = _tokens(key, result)
    print(_report(where, result, tokens))
    if args.tokens:
        Path(args.tokens).write_text("".join(f"export {n}={shlex.quote(t)}\n" for n, t, _ in tokens),
                                     encoding="utf-8")
        print(f"The tokens are also in {args.tokens}: `. {shlex.quote(args.tokens)}` sets them in a shell.")
    return 0
