"""``kzfhir sign``, ``kzfhir verify`` and ``kzfhir pki init`` (issue 6 part 6).

:func:`register` adds the subcommands to the server's ``kzfhir`` parser; :func:`main` runs them standalone
(``python -m signing ...``). Exit codes: 0 everything verified / done, 1 a signature was refused, 2 the
command could not run (bad arguments, unreadable file, wrong key password).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from lxml import etree

from signing import cades, jws, pades, pki, xmldsig
from signing.algorithms import UnsupportedAlgorithmError
from signing.certificates import name_text
from signing.errors import SigningError
from signing.external_verifier import HttpExternalVerifier
from signing.fhir import SignatureFormat, sign_bundle, sign_resource, verify_fhir_signature
from signing.report import print_status
from signing.revocation import RevocationPolicy
from signing.software_key import load_signer
from signing.status import VerificationStatus
from signing.trust import TrustStore
from signing.verification import Expectations

EXIT_OK, EXIT_REFUSED, EXIT_ERROR = 0, 1, 2
_CMS_SUFFIXES = {".p7s", ".p7m", ".cms", ".sig"}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sign``, ``verify`` and ``pki`` to an argparse subparsers object."""
    sign = subparsers.add_parser("sign", help="sign a FHIR Bundle/resource, XML, PDF or any file")
    sign.add_argument("file", type=Path)
    sign.add_argument("--key", required=True, type=Path, help="PEM private key or PKCS#12 (.p12/.pfx) file")
    sign.add_argument("--cert", type=Path, help="signer certificate (PEM; may be followed by the chain)")
    sign.add_argument(
        "--chain", type=Path, action="append", default=[], help="extra intermediate certificates"
    )
    sign.add_argument("--password", help="key password (default: $KZFHIR_KEY_PASSWORD)")
    sign.add_argument("--format", required=True, choices=["jws", "cms", "xml", "pdf"])
    sign.add_argument("--who", help="Signature.who reference, e.g. Practitioner/123")
    sign.add_argument("--out", type=Path, help="output file (default: derived from FILE)")
    sign.set_defaults(func=_run_sign)

    verify = subparsers.add_parser("verify", help="verify a signed Bundle, XML, PDF, CMS or JWS file")
    verify.add_argument("file", type=Path)
    verify.add_argument(
        "--trust", type=Path, help="trust store directory (root/intermediate certificates, CRLs)"
    )
    verify.add_argument("--content", type=Path, help="the signed data of a detached .p7s/.jws signature")
    verify.add_argument("--iin", help="IIN the signer must have (the Practitioner named as signer)")
    verify.add_argument("--bin", help="BIN the signer's organisation must have")
    verify.add_argument("--revocation", choices=["off", "soft", "hard"], default="soft")
    verify.add_argument("--ocsp-url", help="OCSP responder to ask before the CRL files")
    verify.add_argument("--external-verifier", help="URL of the GOST 34.310-2004 verifier service")
    verify.set_defaults(func=_run_verify)

    pki_parser = subparsers.add_parser("pki", help="test PKI shaped like the national CA")
    pki_sub = pki_parser.add_subparsers(dest="pki_command", required=True)
    init = pki_sub.add_parser(
        "init", help="create root, intermediate, doctor/organisation certificates, CRLs"
    )
    init.add_argument("directory", type=Path)
    init.add_argument("--force", action="store_true", help="write into a non-empty directory")
    init.set_defaults(func=_run_pki_init)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kzfhir", description="EDS signing and verification")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    func: Any = args.func  # the same attribute fhir_server.cli dispatches on
    return int(func(args))


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_ERROR


# --- sign -------------------------------------------------------------------------------------------------


def _run_sign(args: argparse.Namespace) -> int:
    password = args.password if args.password is not None else os.environ.get("KZFHIR_KEY_PASSWORD")
    try:
        signer = load_signer(args.key, args.cert, password=password, chain_paths=args.chain)
        data = args.file.read_bytes()
        out, payload = asyncio.run(_sign(args, signer, data))
    except (OSError, SigningError, UnsupportedAlgorithmError, ValueError) as exc:
        return _error(str(exc))
    out.write_bytes(payload)
    print(f"signed {args.file} ({args.format}) as {name_text(signer.signing_cert.subject)} -> {out}")
    return EXIT_OK


async def _sign(args: argparse.Namespace, signer: Any, data: bytes) -> tuple[Path, bytes]:
    src: Path = args.file
    fmt: SignatureFormat | Literal["pdf"] = args.format
    if fmt == "pdf":
        return args.out or src.with_suffix(".signed.pdf"), await pades.sign_pdf(data, signer)
    if src.suffix.lower() == ".json" and fmt in ("jws", "cms", "xml"):
        resource = json.loads(data)
        who = args.who or {"display": name_text(signer.signing_cert.subject)}
        if resource.get("resourceType") == "Bundle":
            signed = await sign_bundle(resource, signer, fmt, who)
            return args.out or src.with_suffix(".signed.json"), _json(signed)
        element = await sign_resource(resource, signer, fmt, who)
        return args.out or src.with_suffix(".signature.json"), _json(element)
    if fmt == "xml":
        document = xmldsig.parse(data)
        await xmldsig.sign_enveloped(document, signer)
        return args.out or src.with_suffix(".signed.xml"), etree.tostring(
            document, xml_declaration=True, encoding="UTF-8"
        )
    if fmt == "cms":
        return args.out or src.with_name(src.name + ".p7s"), await cades.sign_detached(data, signer)
    return args.out or src.with_name(src.name + ".jws"), (await jws.sign_detached(data, signer)).encode()


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


# --- verify -----------------------------------------------------------------------------------------------


def _trust(args: argparse.Namespace) -> TrustStore | None:
    policy = RevocationPolicy(mode=args.revocation, ocsp_url=args.ocsp_url)
    external = HttpExternalVerifier(args.external_verifier) if args.external_verifier else None
    if args.trust is None:
        return TrustStore([], revocation=policy, external_verifier=external) if external else None
    store = TrustStore.from_directory(args.trust, policy)
    store.external_verifier = external
    return store


def _run_verify(args: argparse.Namespace) -> int:
    try:
        trust = _trust(args)
        statuses = asyncio.run(_verify(args, trust))
    except (OSError, ValueError) as exc:
        return _error(str(exc))
    for status in statuses:
        print_status(status)
    return EXIT_OK if statuses and all(s.ok for s in statuses) else EXIT_REFUSED


def _detached_content(args: argparse.Namespace) -> bytes | None:
    if args.content is not None:
        return bytes(args.content.read_bytes())
    sibling = args.file.with_suffix("")
    return sibling.read_bytes() if sibling != args.file and sibling.is_file() else None


async def _verify(args: argparse.Namespace, trust: TrustStore | None) -> tuple[VerificationStatus, ...]:
    src: Path = args.file
    data = src.read_bytes()
    expect = Expectations(args.iin, args.bin)
    suffix = src.suffix.lower()
    if suffix == ".pdf" or data.startswith(b"%PDF-"):
        return await pades.verify_pdf(data, trust, expect)
    if suffix == ".xml" or data.lstrip().startswith(b"<"):
        return (await xmldsig.verify_enveloped(data, trust, expect),)
    if suffix == ".json":
        resource = json.loads(data)
        if "signature" not in resource:
            raise ValueError(f"{src} has no 'signature' element to verify")
        return (await verify_fhir_signature(resource, resource["signature"], trust, args.iin, args.bin),)
    content = _detached_content(args)
    if suffix == ".jws":
        if content is None:
            raise ValueError("a detached JWS needs --content FILE (the signed data)")
        return (await jws.verify_detached(data.decode("ascii", "replace"), content, trust, expect),)
    if suffix in _CMS_SUFFIXES or content is not None:
        return (await cades.verify_detached(data, content, trust, expect),)
    raise ValueError(f"cannot tell the signature format of {src}: use .json, .xml, .pdf, .p7s or .jws")


# --- pki --------------------------------------------------------------------------------------------------


def _run_pki_init(args: argparse.Namespace) -> int:
    directory: Path = args.directory
    if directory.exists() and any(directory.iterdir()) and not args.force:
        return _error(f"{directory} is not empty; use --force to write into it")
    try:
        manifest = pki.init_pki(directory)
    except OSError as exc:
        return _error(str(exc))
    print(f"test PKI written to {directory} (trust store: {directory / manifest['trust_dir']})")
    for name, identity in manifest["identities"].items():
        print(
            f"  {name:<14} {identity['algorithm']:<22} IIN {identity['iin']} "
            f"{'BIN ' + identity['bin'] if identity['bin'] else '':<16} {identity['purpose']}"
        )
    print(f"PKCS#12 password: {manifest['p12_password']} (test keys only)")
    return EXIT_OK
