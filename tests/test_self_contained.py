"""The project owns what its code, tests and benchmarks read: no path climbs out of the repository and
none names a folder of a development machine, so a clone with nothing beside it behaves as the
developers' checkout (issue 13)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("fhir_server", "signing", "profiles", "terminology", "mappings", "conformance", "tests", "bench",
           "scripts")
PARENTS = re.compile(r"__file__\)?(?:\.resolve\(\))?\.parents\[(\d+)\]")
ROOT_PARENT = re.compile(r"\bROOT\.parent\b")
# Absolute folders of a development machine as string literals ("/Patient/1" and other URL paths pass).
MACHINE = re.compile(r"""["'](?:/work|/home|/root|/opt|/mnt|/srv)/""")


def _findings(rel: Path, text: str) -> list[str]:
    # parents[len(parts) - 1] of a file is the repository root; a higher index is outside it.
    found = [f"{rel}: parents[{n}]" for n in map(int, PARENTS.findall(text)) if n > len(rel.parts) - 1]
    found += [f"{rel}: {m.group(0)}" for m in (*ROOT_PARENT.finditer(text), *MACHINE.finditer(text))]
    return found


def test_no_source_file_reaches_outside_the_repository() -> None:
    sources = sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py") if p != Path(__file__))
    assert len(sources) > 300
    found = [f for p in sources for f in _findings(p.relative_to(ROOT), p.read_text(encoding="utf-8"))]
    assert found == []


def test_the_check_sees_the_paths_it_forbids() -> None:
    conftest = Path("tests/conftest.py")
    assert _findings(conftest, 'DATA = Path(__file__).resolve().parents[2] / "shared" / "data"') == [
        "tests/conftest.py: parents[2]"]
    assert _findings(conftest, 'ROOT = Path(__file__).resolve().parents[1]') == []
    assert _findings(conftest, 'DEFINITIONS = Path("/work/shared/data/fhir-r4")') == ['tests/conftest.py: "/work/']
    assert _findings(conftest, 'req = ROOT.parent / "shared"') == ["tests/conftest.py: ROOT.parent"]
    assert _findings(conftest, 'client.get("/Patient/1"); Path(tmp) / "x"') == []
