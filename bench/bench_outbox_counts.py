"""The deliveries page's counts (``$deliveries?counts=true``, ``Store.outbox_counts``) on a large outbox: 200,000
NEHP messages in one SQLite store, 150,000 of them delivered; the CPU time and wall time of one count of every
receiver and state, twice (the second with a warm cache).

    .venv/bin/python -m bench.bench_outbox_counts
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from fhir_server.backends import sqlite_store

BATCHES, PER_BATCH, DELIVERED = 20, 10_000, 150_000


async def _run(tmp: Path) -> None:
    store = sqlite_store(tmp / "outbox.sqlite", synchronous_full=False)
    await store.open()
    try:
        for batch in range(BATCHES):
            def enqueue(view: Any, b: int = batch) -> None:
                for i in range(PER_BATCH):
                    view.enqueue("nehp", f"Patient/p{i % 500}", f"k{b}-{i}", b"{}")

            await store.transaction(enqueue)
        ids = [item.id for item in await store.outbox_by_status("nehp", "pending", DELIVERED)]
        await store.transaction(lambda view: view.settle_outbox(ids, "delivered", None, None))
        for _ in range(2):
            cpu, wall = time.process_time(), time.perf_counter()
            counts = await store.outbox_counts(["nehp", "payment", "egov-cabinet"])
            print(f"{counts}: {(time.perf_counter() - wall) * 1000:.1f} ms wall, "
                  f"{(time.process_time() - cpu) * 1000:.1f} ms CPU")
    finally:
        await store.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_run(Path(tmp)))


if __name__ == "__main__":
    main()
