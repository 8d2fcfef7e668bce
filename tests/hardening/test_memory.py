"""Bounded memory: a 10,000-entry transaction and six parallel unbounded ``_revinclude`` searches
keep the server process under a stated RSS ceiling, and RSS comes back near its baseline after the
load (issue 12 §2). Real process, Linux /proc figures; the ceilings are documented in
docs/limits.md."""

from __future__ import annotations

import concurrent.futures
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.hardening.live import Live, serving

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]
CEILING_MB = 1024  # peak RSS during the load
RETURN_MB = 200  # RSS above the post-start baseline allowed once the load has stopped
ENTRIES = 10_000
FHIR_JSON = {"content-type": "application/fhir+json", "prefer": "return=minimal"}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with serving(tmp_path_factory.mktemp("memory")) as server:
        yield server


def test_transaction_and_revinclude_stay_under_the_ceiling_and_memory_returns(live: Live) -> None:
    pid = live.proc.pid
    assert live.get("/Patient?_count=1").status_code == 200
    baseline = rss_mb(pid)
    peak = baseline
    entries = [{"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p1"},
                "request": {"method": "PUT", "url": "Patient/p1"}}]
    entries += [{"resource": {"resourceType": "Observation", "status": "final", "code": {"text": f"hr {i}"},
                              "subject": {"reference": "Patient/p1"}, "valueQuantity": {"value": 60 + i % 40}},
                 "request": {"method": "POST", "url": "Observation"}} for i in range(ENTRIES - 1)]
    with concurrent.futures.ThreadPoolExecutor(7) as pool:
        sent = pool.submit(httpx.post, f"{live.url}/", json={"resourceType": "Bundle", "type": "transaction",
                                                                 "entry": entries}, headers=FHIR_JSON, timeout=900)
        while not sent.done():
            peak = max(peak, rss_mb(pid))
            time.sleep(0.2)
        assert sent.result().status_code == 200, sent.result().text[:500]
        del entries
        after_transaction = rss_mb(pid)
        settled: list[float] = []
        for _ in range(3):  # the same load three times: a leak would grow with each round
            peak = max(peak, _revinclude_round(live, pool))
            time.sleep(2)
            assert live.get("/metadata").status_code == 200
            settled.append(rss_mb(pid))
    print(f"RSS MB: baseline {baseline:.0f}, after the transaction {after_transaction:.0f}, peak {peak:.0f}, "
          f"settled after each round {', '.join(f'{s:.0f}' for s in settled)}")
    assert peak < CEILING_MB
    assert settled[-1] < baseline + RETURN_MB
    assert settled[-1] - settled[0] < 50


def _revinclude_round(live: Live, pool: concurrent.futures.ThreadPoolExecutor) -> float:
    """Six parallel _revinclude searches whose one match is referenced 9,999 times; the peak RSS."""
    url = f"{live.url}/Patient?_id=p1&_revinclude=Observation:subject&_count=1000"
    searches = [pool.submit(httpx.get, url, timeout=600) for _ in range(6)]
    peak = 0.0
    while not all(s.done() for s in searches):
        peak = max(peak, rss_mb(live.proc.pid))
        time.sleep(0.1)
    for s in searches:
        bundle = s.result().json()
        assert len(bundle["entry"]) == 1 + 1000 + 1  # the match, the capped includes, the warning
    return peak
