"""The progress display of ``kzfhir load``: resources done, resources/s, share of the input and ETA.

On a terminal it is one line redrawn in place; elsewhere (CI logs, pipes) ``lines`` prints a line every
few seconds and ``auto`` prints nothing until the summary. The share done is measured in bytes of the
input files on disk (``sources.Item.weight``), so the ETA needs no first pass over the data.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

MODES = ("auto", "bar", "lines", "none")


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    def __init__(self, total_weight: int, mode: str = "auto", stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if self.stream.isatty() else "none"
        self.mode = mode
        self.total = max(1, total_weight)
        self.started = time.monotonic()
        self.weight = 0
        self.ok = 0
        self.failed = 0
        self._shown = 0.0
        self._every = 0.2 if mode == "bar" else 5.0

    def advance(self, ok: int, failed: int, weight: int) -> None:
        self.ok += ok
        self.failed += failed
        self.weight += weight
        now = time.monotonic()
        if self.mode != "none" and now - self._shown >= self._every:
            self._shown = now
            self._show(now)

    def line(self, now: float | None = None) -> str:
        elapsed = (now or time.monotonic()) - self.started
        done = min(1.0, self.weight / self.total)
        rate = (self.ok + self.failed) / elapsed if elapsed > 0 else 0.0
        eta = elapsed * (1 - done) / done if done > 0 else None
        width = 24
        bar = "#" * int(done * width) + "-" * (width - int(done * width))
        text = (f"[{bar}] {done:4.0%}  {self.ok:,} resources loaded  {rate:,.0f}/s  "
                f"elapsed {_clock(elapsed)}  ETA {_clock(eta) if eta is not None else '?'}")
        return text + (f"  {self.failed:,} failed" if self.failed else "")

    def _show(self, now: float) -> None:
        if self.mode == "bar":
            self.stream.write("\r" + self.line(now) + "\x1b[K")
        else:
            self.stream.write(self.line(now) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.mode == "bar":
            self.stream.write("\r" + self.line() + "\x1b[K\n")
            self.stream.flush()
