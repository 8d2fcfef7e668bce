"""Compare kzfhir's FHIR XML with the npm ``fhir`` package (Lantana FHIR.js 4.12.0) on every example.

    python -m tests.formats.npm.compare        # from the project root; needs node and npm

Installs the pinned package (``npm ci`` here, from package-lock.json), converts every official R4
example and ``extra/*.json`` three ways, and classifies each difference (``differences.py``):

- ``json_to_xml``  npm's jsonToXml against kzfhir's XML of the same JSON;
- ``xml_to_json``  npm's xmlToJson of kzfhir's XML against the original JSON;
- ``read_npm_xml`` kzfhir reading npm's XML against the original JSON.

It writes ``comparison.json`` (the categories per example and direction) and npm's output for the
``SAMPLE`` into ``expected/``, which ``tests/formats/test_xml_npm_agreement.py`` checks offline: the
comparison is run once and committed, so the test suite needs neither node nor the network.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from lxml import etree

from fhir_server.errors import FhirError
from fhir_server.formats import resource_from_xml, resource_to_xml
from fhir_server.jsonio import loads
from tests.data import r4_examples
from tests.formats.npm.differences import error_category, json_differences, xml_differences

HERE = Path(__file__).parent
EXPECTED = HERE / "expected"
SAMPLE = (
    "Patient-f001", "AllergyIntolerance-nkda", "Claim-100151", "Observation-decimal", "Observation-bmd",
    "ActivityDefinition-provide-mosquito-prevention-advice", "Bundle-bundle-transaction", "Bundle-bundle-response",
    "MedicationRequest-medrx0302", "Patient-kz-primitive-extensions", "Parameters-kz-decimals",
    "Questionnaire-kz-nested", "Basic-kz-narrative-markup",
)


def sources() -> dict[str, bytes]:
    """The official examples and the hand-made cases, by name without ``.json``."""
    out = {name.removesuffix(".json"): raw for name, raw in r4_examples().items()}
    out.update({path.stem: path.read_bytes() for path in sorted((HERE / "extra").glob("*.json"))})
    return out


def categories(found: list[tuple[str, str]]) -> dict[str, int]:
    return dict(sorted(Counter(category for category, _ in found).items()))


def json_to_xml(ours: bytes, npm: bytes | None, error: str | None) -> dict[str, int]:
    if npm is None:
        return {error_category(error or ""): 1}
    try:
        theirs = etree.fromstring(npm)
    except etree.XMLSyntaxError as exc:
        return {error_category(str(exc)): 1}
    return categories(xml_differences(etree.fromstring(ours), theirs))


def xml_to_json(original: dict[str, Any], npm: bytes | None, error: str | None) -> dict[str, int]:
    if npm is None:
        return {error_category(error or ""): 1}
    return categories(json_differences(original, loads(npm)))


def read_npm_xml(original: dict[str, Any], npm: bytes | None, error: str | None) -> dict[str, int]:
    if npm is None:
        return {error_category(error or ""): 1}
    try:
        ours = resource_from_xml(npm)
    except FhirError as exc:
        return {error_category(exc.message): 1}
    return categories(json_differences(original, ours))


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


def _error(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def classify(name: str, original: dict[str, Any], ours_xml: bytes, out: Path) -> dict[str, Any]:
    npm_xml, npm_json = _read(out / f"{name}.npm.xml"), _read(out / f"{name}.npm.json")
    return {
        "json_to_xml": json_to_xml(ours_xml, npm_xml, _error(out / f"{name}.json.error")),
        "xml_to_json": xml_to_json(original, npm_json, _error(out / f"{name}.ours.xml.error")),
        "read_npm_xml": read_npm_xml(original, npm_xml, _error(out / f"{name}.json.error")),
    }


def main() -> int:
    if shutil.which("npm") is None or shutil.which("node") is None:
        print("node and npm are needed to run the comparison", file=sys.stderr)
        return 2
    subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=HERE, check=True)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        inputs, out = Path(tmp) / "in", Path(tmp) / "out"
        inputs.mkdir()
        out.mkdir()
        originals = {}
        for name, raw in sources().items():
            originals[name] = loads(raw)
            (inputs / f"{name}.json").write_bytes(raw)
            (inputs / f"{name}.ours.xml").write_bytes(resource_to_xml(originals[name]))
        subprocess.run(["node", str(HERE / "convert.js"), str(inputs), str(out)], check=True)
        for name, original in originals.items():
            results[name] = classify(name, original, (inputs / f"{name}.ours.xml").read_bytes(), out)
        shutil.rmtree(EXPECTED, ignore_errors=True)
        EXPECTED.mkdir()
        for name in SAMPLE:
            for produced in out.glob(f"{name}.*"):
                shutil.copy(produced, EXPECTED / produced.name)
    summary = {direction: dict(sorted(Counter(c for r in results.values() for c in r[direction]).items()))
               for direction in ("json_to_xml", "xml_to_json", "read_npm_xml")}
    agree = {direction: sum(1 for r in results.values() if not r[direction]) for direction in summary}
    report = {"npm_package": "fhir@4.12.0", "resources": len(results), "agree": agree,
              "examples_with_category": summary, "results": results}
    (HERE / "comparison.json").write_text(json.dumps(report, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "results"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
