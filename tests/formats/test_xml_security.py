"""XXE and entity expansion cannot happen: no DTD, no entities, no network (FHIR R4 xml.html)."""

from __future__ import annotations

import time

import pytest

from fhir_server.errors import FhirError
from fhir_server.formats import resource_from_xml
from fhir_server.formats.xml_safe import parse

NS = 'xmlns="http://hl7.org/fhir"'

XXE_FILE = (f'<?xml version="1.0"?><!DOCTYPE Patient [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            f'<Patient {NS}><name><family value="&xxe;"/></name></Patient>')
XXE_NETWORK = (f'<!DOCTYPE Patient SYSTEM "http://127.0.0.1:9/fhir.dtd"><Patient {NS}/>')
PARAMETER_ENTITY = (f'<!DOCTYPE Patient [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd"> %remote;]>'
                    f'<Patient {NS}/>')
LAUGHS = ('<!DOCTYPE lolz [<!ENTITY lol "lol">'
          + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
          + f']><Patient {NS}><name><family value="&lol9;"/></name></Patient>')


@pytest.mark.parametrize("xml", [XXE_FILE, XXE_NETWORK, PARAMETER_ENTITY, LAUGHS],
                         ids=["xxe-file", "xxe-network", "parameter-entity", "billion-laughs"])
def test_a_doctype_is_refused_before_anything_is_resolved(xml: str):
    started = time.monotonic()
    with pytest.raises(FhirError) as info:
        resource_from_xml(xml.encode())
    assert info.value.status == 400 and info.value.issues[0].code == "security"
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
@pytest.mark.parametrize("xml", [XXE_FILE, LAUGHS], ids=["xxe-file", "billion-laughs"])
def test_a_doctype_that_utf16_would_hide_from_the_byte_scan_is_refused_unparsed(xml: str, encoding: str):
    data = xml.replace('<?xml version="1.0"?>', f'<?xml version="1.0" encoding="{encoding}"?>').encode(encoding)
    with pytest.raises(FhirError) as info:
        parse(data)
    assert "UTF-8" in info.value.message


def test_a_doctype_after_parsing_is_refused_even_where_the_scan_cannot_see_it(monkeypatch: pytest.MonkeyPatch):
    # Belt and braces: were the byte scan ever bypassed, the parsed document's DTD is still refused.
    data = f'<!DOCTYPE Patient [<!ENTITY a "b">]><Patient {NS}/>'.encode()
    monkeypatch.setattr("fhir_server.formats.xml_safe._has_doctype", lambda raw: False)
    with pytest.raises(FhirError) as info:
        parse(data)
    assert info.value.issues[0].code == "security"


def test_undeclared_entities_are_an_error_not_a_lookup():
    with pytest.raises(FhirError):
        resource_from_xml(f'<Patient {NS}><name><family value="&nbsp;"/></name></Patient>'.encode())


def test_xinclude_is_not_processed_it_is_an_unknown_element():
    xml = (f'<Patient {NS} xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file:///etc/passwd"/>'
           '</Patient>')
    with pytest.raises(FhirError) as info:
        resource_from_xml(xml.encode())
    assert "passwd" not in info.value.message.replace("file:///etc/passwd", "")


def test_nesting_beyond_the_parser_limit_is_a_400_not_a_crash():
    depth = 20_000
    xml = f'<Patient {NS}>' + "<contained><Patient>" * depth + "</Patient></contained>" * depth + "</Patient>"
    with pytest.raises(FhirError) as info:
        resource_from_xml(xml.encode())
    assert info.value.status == 400
