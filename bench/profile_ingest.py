"""Where transaction ingest spends its time (issue 20, "Profile ingest per resource"): a real
``kzfhir serve --open`` ingests the Synthea Bundles from 4 clients while py-spy samples every thread of it
(``--idle`` off: only samples that run Python or native code count), and each sample is put in the first
stage its stack names, innermost frame first:

    python -m bench.profile_ingest [--bundles 20] [--rate 200]

py-spy is not a dependency of the project: ``pip install py-spy`` first (root, or ptrace allowed).
Prints the server's CPU time per resource (/proc) and, per stage, its share of the samples and that share of
the CPU time per resource.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench import driver, targets
from bench.workload import workload

#: (stage, substrings of a frame "function (file:line)"), tried on each frame from the innermost outwards: the
#: first frame that matches decides (a C call such as sqlite3's execute or json's scanner shows as the Python
#: frame that made it)
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("commit / fsync", ("GroupCommitWriter._commit",)),
    ("SQL statements (index rows, resources, history)", ("storage/sqlite/search/writer.py", "storage/sqlite/txview.py",
                                                          "storage/sqlite/history.py", "storage/sqlite/store.py",
                                                          "storage/sqlite/outbox.py")),
    ("validation", ("fhir_server/validation/", "fhirpathpy/", "antlr4/", "profiles/", "terminology/")),
    ("index extraction", ("fhir_server/search/", "storage/sqlite/indexing.py")),
    ("parse (JSON)", ("fhir_server/jsonio.py", "json/decoder.py", "json/__init__.py")),
    ("audit", ("fhir_server/security/", "storage/sqlite/audit/")),
    ("hooks (subscriptions, jobs)", ("fhir_server/subscriptions/", "fhir_server/jobs/")),
    ("transaction planning and execution", ("fhir_server/interactions/",)),
    ("response building and HTTP", ("fhir_server/api/", "fhir_server/formats/", "uvicorn/", "starlette/",
                                    "httptools")),
]


def classify(stack: str) -> str:
    for frame in stack.split(";")[:0:-1]:  # innermost first; the first element names the thread
        for stage, needles in STAGES:
            if any(n in frame for n in needles):
                return stage
    return "other (event loop, writer queue, interpreter)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_ingest")
    parser.add_argument("--bundles", type=int, default=20)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(__import__("sys").executable).parent / "py-spy")
    if not Path(spy).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy")
    work = workload(args.bundles)
    with tempfile.TemporaryDirectory(prefix="kzfhir-profile-") as tmp:
        folder = Path(tmp)
        raw = folder / "stacks.txt"
        with targets.kzfhir(str(folder / "db.sqlite"), folder, open_mode=True) as port:
            pid = _server_pid(port)
            record = subprocess.Popen([spy, "record", "--pid", str(pid), "--format", "raw", "--rate",
                                       str(args.rate), "--output", str(raw), "--nonblocking", "--threads"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            cpu0 = _cpu_seconds(pid)
            done = driver.run(lambda: driver.ingest(port, work.bundles))
            cpu = _cpu_seconds(pid) - cpu0
            record.send_signal(2)  # SIGINT: py-spy writes what it sampled and exits
            record.wait(timeout=60)
        totals: collections.Counter[str] = collections.Counter()
        threads: collections.Counter[str] = collections.Counter()
        for line in raw.read_text().splitlines():
            stack, _, text = line.rpartition(" ")
            if stack and text.isdigit():
                totals[classify(stack)] += int(text)
                threads[stack.split(";")[0].split(": ", 1)[-1]] += int(text)
    samples = sum(totals.values())
    per_resource = cpu * 1e6 / max(1, done.resources)
    print(f"{done.resources:,} resources in {done.seconds:.1f} s ({done.rate:,.0f}/s); server CPU {cpu:.1f} s = "
          f"{per_resource:,.0f} µs per resource; {samples:,} samples ("
          + ", ".join(f"{name} {n / samples:.0%}" for name, n in threads.most_common(3)) + ")")
    for stage, count in totals.most_common():
        print(f"  {stage:50} {count / samples:6.1%}  {count / samples * per_resource:6,.0f} µs per resource")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_pid(port: int) -> int:
    """The pid listening on ``port`` (the server; taskset, when used, exec'd into it)."""
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    return int(out.split("pid=")[1].split(",")[0])


if __name__ == "__main__":
    main()
