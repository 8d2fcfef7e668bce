"""Sample signed-content fixtures: a document Bundle (TM-10 medical record) and a PDF rendition."""

from __future__ import annotations

import io
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter


def make_document_bundle() -> dict[str, Any]:
    """A small document Bundle: Composition + Patient + Practitioner (TM-10 medical record)."""
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": "urn:kz:iin", "value": "123456789099"}],
        "name": [{"family": "Иванов", "given": ["Иван"]}],
        "birthDate": "1985-03-15",
    }
    practitioner = {
        "resourceType": "Practitioner",
        "id": "d1",
        "identifier": [{"system": "urn:kz:iin", "value": "123456789011"}],
    }
    composition = {
        "resourceType": "Composition",
        "id": "c1",
        "status": "final",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
        "subject": {"reference": "Patient/p1"},
        "date": "2025-05-01T10:00:00+05:00",
        "author": [{"reference": "Practitioner/d1"}],
        "title": "Консультация",
        "text": {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml"><p>Осмотр</p></div>',
        },
        "section": [
            {
                "title": "Жалобы",
                "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Нет</div>'},
            }
        ],
    }
    observation = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"text": "temperature"},
        "subject": {"reference": "Patient/p1"},
        "valueQuantity": {"value": 36.6, "unit": "Cel"},
    }
    return {
        "resourceType": "Bundle",
        "id": "doc-1",
        "meta": {"versionId": "1"},
        "identifier": {
            "system": "urn:ietf:rfc:3986",
            "value": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0",
        },
        "type": "document",
        "timestamp": "2025-05-01T10:05:00+05:00",
        "entry": [
            {"fullUrl": f"urn:uuid:{r['id']}", "resource": r}
            for r in (composition, patient, practitioner, observation)
        ],
    }


def make_pdf(text: str = "Sick leave certificate") -> bytes:
    """A one-page PDF rendition (sick-leave certificate stand-in)."""
    writer = PdfFileWriter(stream_xrefs=False)
    stream = generic.StreamObject(stream_data=f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1"))
    font = generic.DictionaryObject(
        {
            generic.NameObject("/Type"): generic.NameObject("/Font"),
            generic.NameObject("/Subtype"): generic.NameObject("/Type1"),
            generic.NameObject("/BaseFont"): generic.NameObject("/Helvetica"),
        }
    )
    fonts = generic.DictionaryObject({generic.NameObject("/F1"): writer.add_object(font)})
    resources = generic.DictionaryObject({generic.NameObject("/Font"): fonts})
    writer.insert_page(
        PageObject(contents=writer.add_object(stream), media_box=[0, 0, 595, 842], resources=resources)
    )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
