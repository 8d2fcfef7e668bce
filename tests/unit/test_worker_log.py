"""The outbox worker's log while the store is out of reach: one warning line now and then, no traceback
per poll (issue 12 §3, a clean log); any other failure is logged in full."""

from __future__ import annotations

import logging

import pytest

from fhir_server.errors import FhirError
from fhir_server.jobs import worker


def test_an_unreachable_store_is_one_line_and_other_faults_keep_their_traceback(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "_quiet_until", 0.0)
    caplog.set_level(logging.WARNING, logger=worker.log.name)
    for _ in range(5):  # five polls while PostgreSQL is away
        try:
            raise FhirError("unavailable", "connection refused")
        except FhirError:
            worker._log_failure("outbox round failed")
    try:
        raise KeyError("a bug")
    except KeyError:
        worker._log_failure("outbox round failed")
    records = [r for r in caplog.records if r.name == worker.log.name]
    assert [r.levelno for r in records] == [logging.WARNING, logging.ERROR]
    assert records[0].exc_info is None and "out of reach" in records[0].getMessage()
    assert records[1].exc_info is not None
