"""Compare kzfhir's FHIR XML with the npm ``fhir`` package (Lantana FHIR.js 4.12.0) on every example.

    python scripts/xml_npm_compare.py          # rerun, rewrite comparison.json and expected/
    python scripts/xml_npm_compare.py --check  # rerun, fail if anything differs from comparison.json

The package is installed project-locally in ``tools/fhir-js/`` from its package-lock.json (``make fhir-js``,
which ``make test`` runs: ``npm ci --prefer-offline``, so npm's cache serves it without the network).
Every official R4 example and ``extra/*.json`` is converted three ways and each difference classified
(``differences.py``):

- ``json_to_xml``  npm's jsonToXml against kzfhir's XML of the same JSON (canonical XML, c14n);
- ``xml_to_json``  npm's xmlToJson of kzfhir's XML against the original JSON;
- ``read_npm_xml`` kzfhir reading npm's XML against the original JSON.

``comparison.json`` holds the categories per example and direction, ``expected/`` npm's output for the
``SAMPLE``: ``tests/formats/test_xml_npm_agreement.py`` checks those offline, and
``tests/formats/test_xml_npm_live.py`` reruns the whole comparison when node and the package are there.
"""

from __future__ import annotations

import argparse
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
COMPARISON = HERE / "comparison.json"
FHIR_JS = HERE.parents[2] / "tools" / "fhir-js"
PACKAGE = "fhir@4.12.0"
DIRECTIONS = ("json_to_xml", "xml_to_json", "read_npm_xml")
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


def unavailable() -> str | None:
    """Why the comparison cannot run here (no node, the package not installed), or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    installed = FHIR_JS / "node_modules" / "fhir" / "package.json"
    if not installed.exists():
        return f"the npm package {PACKAGE} is not installed in {FHIR_JS} (make fhir-js)"
    version = json.loads(installed.read_text()).get("version")
    if f"fhir@{version}" != PACKAGE:
        return f"{FHIR_JS} holds fhir@{version}, not {PACKAGE} (make fhir-js)"
    return None


def install() -> None:
    """``npm ci`` from the lock file, npm's cache first (works offline once the package was fetched)."""
    subprocess.run(["npm", "ci", "--prefer-offline", "--ignore-scripts", "--no-audit", "--no-fund",
                    "--loglevel=error"], cwd=FHIR_JS, check=True)


def run(expected: Path | None = None) -> dict[str, Any]:
    """The comparison report over every source; npm's output for the SAMPLE copied into ``expected``."""
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
        subprocess.run(["node", str(FHIR_JS / "convert.js"), str(inputs), str(out)], check=True, cwd=FHIR_JS)
        for name, original in originals.items():
            results[name] = classify(name, original, (inputs / f"{name}.ours.xml").read_bytes(), out)
        if expected is not None:
            shutil.rmtree(expected, ignore_errors=True)
            expected.mkdir()
            for name in SAMPLE:
                for produced in out.glob(f"{name}.*"):
                    shutil.copy(produced, expected / produced.name)
    summary = {direction: dict(sorted(Counter(c for r in results.values() for c in r[direction]).items()))
               for direction in DIRECTIONS}
    agree = {direction: sum(1 for r in results.values() if not r[direction]) for direction in summary}
    return {"npm_package": PACKAGE, "resources": len(results), "agree": agree,
            "examples_with_category": summary, "results": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compare kzfhir's FHIR XML with the npm fhir package on every "
                                     "official R4 example (docs/formats.md).")
    parser.add_argument("--check", action="store_true",
                        help="fail if any result differs from comparison.json instead of rewriting it")
    check = parser.parse_args(argv).check
    if shutil.which("npm") is None or shutil.which("node") is None:
        print("node and npm are needed to run the comparison", file=sys.stderr)
        return 2
    install()
    report = run(None if check else EXPECTED)
    print(json.dumps({k: v for k, v in report.items() if k != "results"}, indent=1))
    if check:
        committed = json.loads(COMPARISON.read_text())
        changed = sorted(n for n in set(report["results"]) | set(committed["results"])
                         if report["results"].get(n) != committed["results"].get(n))
        for name in changed:
            print(f"{name}: now {report['results'].get(name)}, committed {committed['results'].get(name)}",
                  file=sys.stderr)
        return 1 if changed else 0
    COMPARISON.write_text(json.dumps(report, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
