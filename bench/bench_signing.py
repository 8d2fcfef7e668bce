"""Sign and verify operations per second for each EDS format (jws, cms, xml, pdf) and key type.

A test PKI is generated in a temporary directory; the signed content is a small document Bundle (FHIR
formats) or a one-page PDF. Verification includes the full certificate path and CRL check. Each figure is
measured for about half a second, so the whole run stays well under a minute.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

from signing import (
    Signer,
    TrustStore,
    init_pki,
    load_signer,
    sign_bundle,
    sign_pdf,
    verify_fhir_signature,
    verify_pdf,
)
from signing import gost as gost_module

_BUDGET_S = 0.5


def _bundle() -> dict[str, Any]:
    entries = [
        {
            "fullUrl": f"urn:uuid:o{i}",
            "resource": {
                "resourceType": "Observation",
                "id": f"o{i}",
                "status": "final",
                "code": {"text": "temperature"},
                "subject": {"reference": "Patient/p1"},
                "valueQuantity": {"value": 36.6 + i / 10, "unit": "Cel"},
            },
        }
        for i in range(20)
    ]
    composition = {
        "resourceType": "Composition",
        "id": "c1",
        "status": "final",
        "title": "Консультация",
        "type": {"text": "note"},
        "date": "2025-05-01",
        "author": [{"reference": "Practitioner/d1"}],
    }
    return {
        "resourceType": "Bundle",
        "type": "document",
        "timestamp": "2025-05-01T10:05:00+05:00",
        "entry": [{"fullUrl": "urn:uuid:c1", "resource": composition}, *entries],
    }


def _pdf() -> bytes:
    writer = PdfFileWriter(stream_xrefs=False)
    stream = generic.StreamObject(stream_data=b"BT /F1 12 Tf 72 720 Td (Sick leave certificate) Tj ET")
    font = generic.DictionaryObject(
        {
            generic.NameObject("/Type"): generic.NameObject("/Font"),
            generic.NameObject("/Subtype"): generic.NameObject("/Type1"),
            generic.NameObject("/BaseFont"): generic.NameObject("/Helvetica"),
        }
    )
    resources = generic.DictionaryObject(
        {
            generic.NameObject("/Font"): generic.DictionaryObject(
                {generic.NameObject("/F1"): writer.add_object(font)}
            )
        }
    )
    writer.insert_page(
        PageObject(contents=writer.add_object(stream), media_box=[0, 0, 595, 842], resources=resources)
    )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


async def _rate(operation: Callable[[], Awaitable[object]]) -> float:
    await operation()  # warm-up
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < _BUDGET_S:
        await operation()
        count += 1
    return count / elapsed


async def _measure(fmt: str, signer: Signer, trust: TrustStore) -> tuple[float, float]:
    if fmt == "pdf":
        pdf = _pdf()
        signed_pdf = await sign_pdf(pdf, signer)
        return await _rate(lambda: sign_pdf(pdf, signer)), await _rate(lambda: verify_pdf(signed_pdf, trust))
    bundle = _bundle()
    signed = await sign_bundle(bundle, signer, fmt, "Practitioner/d1")  # type: ignore[arg-type]
    status = await verify_fhir_signature(signed, signed["signature"], trust)
    if not status.ok:
        raise RuntimeError(f"benchmark signature does not verify: {status.summary()}")
    return (
        await _rate(lambda: sign_bundle(bundle, signer, fmt, "Practitioner/d1")),  # type: ignore[arg-type]
        await _rate(lambda: verify_fhir_signature(signed, signed["signature"], trust)),
    )


async def _run(directory: Path) -> None:
    init_pki(directory)
    trust = TrustStore.from_directory(directory / "trust")
    cases = [(fmt, key) for fmt in ("jws", "cms", "xml", "pdf") for key in ("doctor", "doctor-ec")]
    if gost_module.available():
        cases.append(("cms", "doctor-gost"))
    labels = {"doctor": "RSA-2048", "doctor-ec": "ECDSA P-256", "doctor-gost": "GOST 2015-256"}
    print(f"{'format':<6} {'key':<14} {'sign ops/s':>11} {'verify ops/s':>13}")
    for fmt, key in cases:
        signer = load_signer(directory / f"{key}.key.pem", directory / f"{key}.cert.pem")
        sign_rate, verify_rate = await _measure(fmt, signer, trust)
        print(f"{fmt:<6} {labels[key]:<14} {sign_rate:>11.1f} {verify_rate:>13.1f}", flush=True)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_run(Path(tmp)))


if __name__ == "__main__":
    main()
