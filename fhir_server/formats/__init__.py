"""Wire formats besides JSON: FHIR XML (R4 xml.html), converted to and from the server's JSON dicts.

Everything is driven by the R4 StructureDefinitions (``xml_schema``): element order, which properties
are attributes, where XHTML and wrapped resources go, and the JSON type of each primitive.
"""

from fhir_server.formats.xml_read import resource_from_xml
from fhir_server.formats.xml_write import FHIR_NS, resource_to_xml

__all__ = ["FHIR_NS", "resource_from_xml", "resource_to_xml"]
