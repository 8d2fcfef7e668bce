"""Index rows: what ``Indexer.extract`` produces and a backend writes next to the resource.

Opaque to the storage layer's callers: only the backend's index writer reads the fields. Each row
starts with the parameter code and a composite group number (0 outside composites; the components
of one composite value share a group number > 0, FHIR R4 search §3.1.1.4.9 composite).
"""

from __future__ import annotations

from dataclasses import dataclass

# (param, grp, system, code, text)          token; ``text`` is the normalised display/text (:text)
TokenRow = tuple[str, int, str | None, str | None, str | None]
# (param, grp, normalised, exact)           string
StringRow = tuple[str, int, str, str]
# (param, grp, low, high)                   date: half-open microsecond interval (dates.py)
DateRow = tuple[str, int, int, int]
# (param, grp, low, high)                   number: closed interval, low == high for a point value
NumberRow = tuple[str, int, float, float]
# (param, grp, system, code, unit, low, high)   quantity
QuantityRow = tuple[str, int, str | None, str | None, str | None, float, float]
# (param, grp, target type, target id, target version, url)   reference (url: absolute/canonical)
ReferenceRow = tuple[str, int, str | None, str | None, str | None, str | None]
# (param, grp, value)                       uri
UriRow = tuple[str, int, str]
# (compartment type, compartment id)
CompartmentRow = tuple[str, str]


@dataclass(frozen=True, slots=True)
class IndexRows:
    tokens: tuple[TokenRow, ...] = ()
    strings: tuple[StringRow, ...] = ()
    dates: tuple[DateRow, ...] = ()
    numbers: tuple[NumberRow, ...] = ()
    quantities: tuple[QuantityRow, ...] = ()
    references: tuple[ReferenceRow, ...] = ()
    uris: tuple[UriRow, ...] = ()
    compartments: tuple[CompartmentRow, ...] = ()

    def count(self) -> int:
        return (
            len(self.tokens) + len(self.strings) + len(self.dates) + len(self.numbers)
            + len(self.quantities) + len(self.references) + len(self.uris) + len(self.compartments)
        )


# Suffixes of auxiliary token parameters stored beside the real one.
IDENTIFIER_SUFFIX = ":identifier"  # Reference.identifier of a reference parameter (:identifier)
OF_TYPE_SUFFIX = ":of-type"  # Identifier.type + value of an identifier parameter (:of-type)
