"""Core profiles a resource must meet without declaring them: the R4 vital signs profiles.

R4 §8.1 (observation-vitalsigns): "If implementations use this code to represent vital signs [...] they SHALL
conform to the vital signs profiles". An Observation coded with one of a vital sign's codes is therefore
validated against that profile, as the HL7 reference validator does: the codes below are the LOINC codes of
the R4 vital signs table and the equivalents (LOINC and SNOMED CT) the reference validator recognises. The
first profile whose codes match applies, LOINC before SNOMED CT.
"""

from __future__ import annotations

from typing import Any

__all__ = ["VITAL_SIGNS", "implied_profiles"]

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
_SD = "http://hl7.org/fhir/StructureDefinition/"

# (system, profile id, codes) in the order they are tried.
VITAL_SIGNS: tuple[tuple[str, str, frozenset[str]], ...] = (
    (LOINC, "vitalspanel", frozenset({"85353-1"})),
    (LOINC, "resprate", frozenset({"9279-1", "76170-0", "76172-6", "76171-8", "19840-8", "33438-3", "76270-8",
                                   "11291-2"})),
    (LOINC, "heartrate", frozenset({"8867-4", "60978-4", "73795-7", "73799-9", "76476-1", "76477-9", "8889-8",
                                    "8890-6", "8891-4", "8892-2", "8893-0", "40443-4", "55425-3", "68999-2",
                                    "11328-2", "69000-8", "8886-4"})),
    (LOINC, "oxygensat", frozenset({"2708-6", "19224-5", "20564-1", "2709-4", "2710-2", "2711-0", "2713-6",
                                    "51733-4", "59408-5", "59417-6", "89276-0", "97549-0"})),
    (LOINC, "bodytemp", frozenset({"8310-5", "60834-9", "60835-6", "60836-4", "60838-0", "60955-2", "61009-7",
                                   "75539-7", "75987-8", "76010-8", "76011-6", "76278-1", "8309-7", "8328-7",
                                   "8329-5", "8330-3", "8331-1", "8332-9", "8333-7", "8334-5", "91371-5",
                                   "98657-0", "98663-8"})),
    (LOINC, "bodyheight", frozenset({"8302-2", "3137-7", "3138-5", "8306-3", "8308-9"})),
    (LOINC, "headcircum", frozenset({"9843-4", "8287-5"})),
    (LOINC, "bodyweight", frozenset({"29463-7", "3141-9", "3142-7", "75292-3", "79348-9", "8350-1", "8351-9"})),
    (LOINC, "bmi", frozenset({"39156-5", "59574-4", "89270-3"})),
    (LOINC, "bp", frozenset({"85354-9", "35094-2", "8459-0", "76534-7", "55284-4", "8480-6"})),
    (SNOMED, "vitalspanel", frozenset({"46680005"})),
    (SNOMED, "heartrate", frozenset({"271306003", "249043002", "444981005", "399017001", "251670001", "429525003",
                                     "429614003"})),
    (SNOMED, "oxygensat", frozenset({"103228002", "442349007", "442476006", "442440005", "431314004",
                                     "442734002", "713194001"})),
    (SNOMED, "bodytemp", frozenset({"386725007", "276885007", "300076005", "1222808002", "364246006",
                                    "307047009", "708499008", "431598003", "698831002", "698832009", "415882003",
                                    "415974002", "415929009", "415945006"})),
    (SNOMED, "bodyheight", frozenset({"1153637007", "1162419008", "50373000", "1162418000", "1230278008",
                                      "1162392001", "1162417005"})),
    (SNOMED, "headcircum", frozenset({"363812007", "169876006", "1269262007", "363811000"})),
    (SNOMED, "bodyweight", frozenset({"60621009", "735395000", "425024002", "424927000", "784399000",
                                      "1162416001", "1162415002"})),
    (SNOMED, "bp", frozenset({"75367002", "251076008", "163033001", "163035008", "386534000", "386536003",
                              "271649006", "271650006", "407556006", "407554009", "716579001", "399304008"})),
)


def implied_profiles(resource: dict[str, Any]) -> list[str]:
    """The core profiles the R4 specification requires of this resource by its content (vital signs)."""
    if resource.get("resourceType") != "Observation":
        return []
    code = resource.get("code")
    codings = code.get("coding") if isinstance(code, dict) else None
    if not isinstance(codings, list):
        return []
    present = {(c.get("system"), c.get("code")) for c in codings if isinstance(c, dict)}
    for system, profile, codes in VITAL_SIGNS:
        if any(s == system and c in codes for s, c in present):
            return [_SD + profile]
    return []
