"""The connection transport sends what one event-loop turn writes in one call (issue 20:
``fhir_server/api/http_protocol.py`` _CoalescingTransport), keeping order and flushing before close."""

from __future__ import annotations

import asyncio
from typing import Any

from fhir_server.api.http_protocol import _CoalescingTransport


class _Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "a write after close"
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else None


async def test_a_head_and_its_body_leave_in_one_write_at_the_end_of_the_turn() -> None:
    real = _Recorder()
    transport = _CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"{}")
    assert real.writes == []  # held within the turn
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert real.writes[1:] == [b"next"]  # a later turn: a write of its own, in order
    assert transport.get_extra_info("peername") == ("127.0.0.1", 1)  # the rest is the real transport's


async def test_close_sends_what_is_held_first_and_abort_drops_it() -> None:
    real = _Recorder()
    transport = _CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"answer")
    transport.close()
    assert real.writes == [b"answer"] and real.closed
    await asyncio.sleep(0)  # the scheduled flush finds nothing more to send
    assert real.writes == [b"answer"]
    other = _Recorder()
    aborted = _CoalescingTransport(other, asyncio.get_running_loop())  # type: ignore[arg-type]
    aborted.write(b"never")
    aborted.abort()
    await asyncio.sleep(0)
    assert other.writes == [] and other.aborted



async def test_a_large_answer_is_handed_on_at_once_so_flow_control_sees_it() -> None:
    real = _Recorder()
    transport = _CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    chunk = b"x" * 40_000
    transport.write(chunk)
    assert real.writes == []
    transport.write(chunk)  # past HOLD_AT_MOST: both leave now, in one write, within the same turn
    assert real.writes == [chunk + chunk]
    transport.write(b"tail")
    await asyncio.sleep(0)
    assert real.writes == [chunk + chunk, b"tail"]
