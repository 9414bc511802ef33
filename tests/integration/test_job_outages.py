"""A job stopped by a store outage is logged as one line, without a traceback; a bug still gets its traceback."""

from __future__ import annotations

import logging

import dramatiq
import pytest
from sqlalchemy.exc import OperationalError

from gateway.broker import OUTBOUND_QUEUE, make_worker
from gateway.jobs import Jobs


def test_a_store_outage_is_one_warning_and_a_bug_keeps_its_traceback(
    stub_broker: dramatiq.Broker, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = Jobs(stub_broker)

    def outage(pk: int) -> None:
        raise OperationalError("SELECT 1", {}, ConnectionError("connection refused"))

    def bug(pk: int) -> None:
        raise ValueError("a bug")

    jobs.declare("outage_job", outage, queue=OUTBOUND_QUEUE)
    jobs.declare("bug_job", bug, queue=OUTBOUND_QUEUE)
    with caplog.at_level(logging.WARNING):
        jobs.send("outage_job", 7)
        jobs.send("bug_job", 8)
        worker = make_worker(stub_broker, threads=1)
        worker.start()
        try:
            stub_broker.join(OUTBOUND_QUEUE, timeout=20_000, fail_fast=False)  # type: ignore[attr-defined]
            worker.join()
        finally:
            worker.stop()
    outage_lines = [r for r in caplog.records if "outage_job" in r.getMessage()]
    assert 1 == len(outage_lines), [r.getMessage() for r in outage_lines]
    line = outage_lines[0]
    assert (logging.WARNING, None) == (line.levelno, line.exc_info)
    assert "outage_job(7) stopped: the store is unavailable (OperationalError: " in line.getMessage()
    bug_lines = [r for r in caplog.records if "bug_job" in r.getMessage() and r.levelno >= logging.ERROR]
    assert bug_lines and bug_lines[0].exc_info is not None
