"""Search benchmark (issue 3): the 75 Synthea bundles loaded through the index layer into a temp SQLite
file (1x, about 23k resources) and the same data ten times over with new ids (10x), then six query
shapes timed at one client: p50/p95 per query at 1x and 10x, and counting throughput.

Targets: p95 < 20 ms at 1x; 1x -> 10x growth well under 10x; counting >= 200,000 matches/s.
Each query is timed end to end below HTTP: parse_search + run_search + building the Bundle bytes.
"""

from __future__ import annotations

import random
import re
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from fhir_server.interactions.search_bundle import searchset
from fhir_server.jsonio import dumps
from fhir_server.search import IndexRows, get_indexer, parse_search
from fhir_server.storage.sqlite.schema import BASE_DDL, connect
from fhir_server.storage.sqlite.search import INDEX_DDL, run_search, write_index
from tests.data import synthea_bundle_bytes

UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ROUNDS = 60
STAMP = "2024-06-01T00:00:00.000000Z"
DATE_FROM = "2015-01-01"


def _resolve(node: Any, refs: dict[str, str]) -> Any:
    """Replace transaction ``urn:uuid:`` references by ``Type/id`` (what the transaction code does)."""
    if isinstance(node, dict):
        out = {k: _resolve(v, refs) for k, v in node.items()}
        ref = out.get("reference")
        if isinstance(ref, str) and ref in refs:
            out["reference"] = refs[ref]
        return out
    if isinstance(node, list):
        return [_resolve(v, refs) for v in node]
    return node


def load_synthea() -> list[bytes]:
    """Every resource of the 75 bundles as JSON bytes, references resolved; the Organizations and
    Practitioners that several bundles repeat are kept once (a transaction would update them)."""
    out: dict[tuple[str, str], bytes] = {}
    for data in synthea_bundle_bytes():
        bundle = orjson.loads(data)
        entries = bundle.get("entry", [])
        refs = {e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in entries}
        for e in entries:
            key = (e["resource"]["resourceType"], e["resource"]["id"])
            out.setdefault(key, orjson.dumps(_resolve(e["resource"], refs)))
    return list(out.values())


Item = tuple[str, str, bytes, IndexRows]  # type, id, JSON, index rows


def extract_all(docs: list[bytes]) -> list[Item]:
    """Parse and index every resource (the write path's extraction, once per original resource)."""
    indexer = get_indexer()
    out = []
    for data in docs:
        resource = orjson.loads(data)
        out.append((resource["resourceType"], resource["id"], data, indexer.extract(resource)))
    return out


def insert(conn: sqlite3.Connection, items: list[Item]) -> None:
    """Resource rows + index rows, 1,000 resources per transaction (as the store's group commit does)."""
    for start in range(0, len(items), 1000):
        conn.execute("BEGIN")
        for rtype, rid_text, data, rows in items[start : start + 1000]:
            cur = conn.execute(
                "INSERT INTO resources (type, id, version, last_updated, deleted, data) VALUES (?,?,1,?,0,?)",
                (rtype, rid_text, STAMP, data),
            )
            write_index(conn, int(cur.lastrowid or 0), rtype, rows)
        conn.execute("COMMIT")


def copies(items: list[Item], n: int) -> list[Item]:
    """Copy ``n`` of the data: every UUID (ids, references, identifiers) gets a suffix, in the JSON and,
    identically, in the index rows (re-extracting each copy would only repeat the same work)."""
    suffix = f"-c{n}".encode()

    def rename(raw: bytes) -> bytes:
        return UUID.sub(lambda m: m.group(0) + suffix, raw)

    out = []
    for rtype, rid_text, data, rows in items:
        fields = orjson.loads(rename(orjson.dumps([getattr(rows, f) for f in IndexRows.__slots__])))
        copied = IndexRows(*(tuple(tuple(row) for row in field) for field in fields))
        out.append((rtype, rename(rid_text.encode()).decode(), rename(data), copied))
    return out


def pick_inputs(docs: list[bytes]) -> dict[str, Any]:
    """Query inputs taken from the data: patients with observations, a frequent code, names."""
    resources = [orjson.loads(d) for d in docs]
    obs = [r for r in resources if r["resourceType"] == "Observation"]
    codes = Counter(c["code"] for r in obs for c in r["code"].get("coding", []))
    code = codes.most_common(1)[0][0]
    per_patient = Counter(  # patients with recent observations of that code, so the date clause matters
        r["subject"]["reference"].split("/")[1] for r in obs
        if r.get("effectiveDateTime", "") >= DATE_FROM and any(c["code"] == code for c in r["code"]["coding"]))
    patients = [r for r in resources if r["resourceType"] == "Patient"]
    return {
        "code": code,
        "patients": [p for p, _ in per_patient.most_common(30)],
        "people": [(p["name"][0]["family"][:4], p["birthDate"]) for p in patients[:30]],
        "identifiers": [f"{i['system']}|{i['value']}" for p in patients[:30] for i in p.get("identifier", [])[:1]],
    }


def queries(inp: dict[str, Any], rnd: random.Random) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    patient = rnd.choice(inp["patients"])
    family, born = rnd.choice(inp["people"])
    return {
        "obs patient+code+date": ("Observation", [("patient", patient), ("code", inp["code"]),
                                                  ("date", "ge" + DATE_FROM)]),
        "patient name+birthdate": ("Patient", [("name", family), ("birthdate", born)]),
        "encounter +revinclude": ("Encounter", [("patient", patient), ("_revinclude", "Observation:encounter")]),
        "obs chain identifier": ("Observation", [("subject:Patient.identifier", rnd.choice(inp["identifiers"]))]),
        "patient _has obs code": ("Patient", [("_has:Observation:patient:code", inp["code"])]),
        "count one code": ("Observation", [("code", inp["code"]), ("_summary", "count")]),
    }


def run_one(conn: sqlite3.Connection, rtype: str, params: list[tuple[str, str]]) -> tuple[float, int | None]:
    started = time.perf_counter()
    query = parse_search(rtype, params, strict=True)
    result = run_search(conn, query)
    base = "http://bench/fhir"
    dumps(searchset(query, result, base_url=base, path=f"{base}/{rtype}", current_cursor=None))
    return time.perf_counter() - started, result.total


def measure(conn: sqlite3.Connection, inp: dict[str, Any]) -> dict[str, tuple[float, float, int | None]]:
    rnd = random.Random(7)
    for rtype, params in queries(inp, rnd).values():  # warm-up: first use compiles and caches plans
        run_one(conn, rtype, params)
    times: dict[str, list[float]] = {}
    totals: dict[str, int | None] = {}
    for _ in range(ROUNDS):
        for name, (rtype, params) in queries(inp, rnd).items():
            elapsed, total = run_one(conn, rtype, params)
            times.setdefault(name, []).append(elapsed)
            totals[name] = total
    out = {}
    for name, values in times.items():
        values.sort()
        out[name] = (statistics.median(values) * 1000, values[int(len(values) * 0.95) - 1] * 1000, totals[name])
    return out


def main() -> None:
    docs = load_synthea()
    inp = pick_inputs(docs)
    started = time.perf_counter()
    items = extract_all(docs)
    print(f"parsed + indexed {len(docs)} resources in {time.perf_counter() - started:.1f} s")
    _extract_figures(items)
    with tempfile.TemporaryDirectory() as tmp:
        conn = connect(str(Path(tmp) / "bench.sqlite"), synchronous_full=False)
        conn.execute("PRAGMA synchronous=OFF")  # loading speed only; durability is not measured here
        for stmt in BASE_DDL + INDEX_DDL:
            conn.execute(stmt)
        started = time.perf_counter()
        insert(conn, items)
        load_1x = time.perf_counter() - started
        print(f"wrote 1x: {len(docs)} resources + index rows in {load_1x:.1f} s ({len(docs) / load_1x:,.0f}/s)")
        results = {"1x": measure(conn, inp)}
        started = time.perf_counter()
        for n in range(1, 10):
            insert(conn, copies(items, n))
        print(f"loaded 10x: {len(docs) * 10} resources (+{time.perf_counter() - started:.1f} s)")
        results["10x"] = measure(conn, inp)
        conn.close()
    _report(results)


def _extract_figures(items: list[Item]) -> None:
    """Indexer.extract per resource, warm (budget: about 100 µs for typical Synthea resources)."""
    indexer = get_indexer()
    per_type: dict[str, list[float]] = {}
    for _rtype, _id, data, _rows in items:
        resource = orjson.loads(data)
        started = time.perf_counter()
        indexer.extract(resource)
        per_type.setdefault(resource["resourceType"], []).append(time.perf_counter() - started)
    every = sorted(t for ts in per_type.values() for t in ts)
    p95 = every[int(len(every) * 0.95)]
    print(f"Indexer.extract: mean {statistics.fmean(every) * 1e6:.0f} µs, p95 {p95 * 1e6:.0f} µs")
    for rtype in ("Observation", "Encounter", "Claim", "ExplanationOfBenefit", "Procedure", "Patient"):
        ts = sorted(per_type.get(rtype, [0.0]))
        print(f"  {rtype:22} n={len(ts):6} median {statistics.median(ts) * 1e6:5.0f} µs  "
              f"p95 {ts[int(len(ts) * 0.95)] * 1e6:5.0f} µs")


def _report(results: dict[str, dict[str, tuple[float, float, int | None]]]) -> None:
    print(f"{'query':26} {'p50 1x':>8} {'p95 1x':>8} {'p50 10x':>8} {'p95 10x':>8} {'growth':>7} {'total 10x':>10}")
    for name, (p50, p95, _total) in results["1x"].items():
        q50, q95, total10 = results["10x"][name]
        print(f"{name:26} {p50:8.2f} {p95:8.2f} {q50:8.2f} {q95:8.2f} {q50 / p50:6.1f}x {total10!s:>10}")
    for scale in ("1x", "10x"):
        p50, _p95, total = results[scale]["count one code"]
        print(f"counting at {scale}: {total} matches in {p50:.2f} ms = {(total or 0) / (p50 / 1000):,.0f} matches/s")
