"""Preparing inbound messages in processes of their own, so the pipeline's CPU spreads over cores.

CPython runs one process's Python code on one core at a time (the GIL): the threads of a worker
overlap their waiting (commits, the relay, the help desk), not their computing. Parsing,
classifying, threading, verifying and extracting a reply is most of a reply's CPU, so a worker
hands each batch of messages to a preparing process (``GATEWAY_PIPELINE_PROCESSES``; by default
one per core but one). It reads the messages and their tickets from the store itself (it never
writes) and sends back how each one ends; the worker records them in one unit of work and tells
the help desk. Large messages and bounces stay with the worker (see ``InboundPipeline.process_many``);
if a preparing process dies, its batch is prepared by the worker and a new process is started.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from datetime import datetime

from gateway.settings import Settings
from inbound.pipeline import InboundPipeline, Prepared

__all__ = ["MAX_DEFAULT_PROCESSES", "PreparingProcesses", "default_processes"]

log = logging.getLogger(__name__)

#: At most this many preparing processes by default (each holds its own store connections).
MAX_DEFAULT_PROCESSES = 4


def default_processes() -> int:
    """Preparing processes when ``GATEWAY_PIPELINE_PROCESSES`` is unset: one per core but one (which
    the gateway's own process uses), at most :data:`MAX_DEFAULT_PROCESSES`; none on one core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(MAX_DEFAULT_PROCESSES, cores - 1))


class PreparingProcesses:
    """A pool of ``processes`` preparing processes for the gateway of ``settings``, started on first use."""

    def __init__(self, settings: Settings, processes: int) -> None:
        self._settings = replace(settings, pipeline_processes=0)
        self.processes = processes
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Start the processes now (rather than with the first batch), without waiting for them."""
        self._executor().submit(_ready)

    def prepare(self, pks: Sequence[int], now: datetime) -> list[Prepared]:
        """How each message of ``pks`` ends (see ``InboundPipeline.prepare_many``), prepared by one of the
        processes. Raises if that process died (the pool is then started again for the next batch)."""
        pool = self._executor()
        try:
            return pool.submit(_prepare, list(pks), now).result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise

    def close(self) -> None:
        """Stop the processes once the batches they are preparing are done."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spawn: a fork of this threaded process could copy a lock some other thread holds.
                self._pool = ProcessPoolExecutor(
                    self.processes, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start, initargs=(self._settings,),
                )
            return self._pool


# -- in a preparing process ----------------------------------------------------------------------

_pipeline: InboundPipeline | None = None


def _start(settings: Settings) -> None:
    """Build this process's pipeline from the gateway's settings (the store as the gateway has it)."""
    global _pipeline
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the gateway, which stops its processes
    from dramatiq.brokers.stub import StubBroker

    from gateway.app import build_gateway
    from gateway.logs import configure

    configure(level=settings.log_level, fmt=settings.log_format)
    gw = build_gateway(settings, broker=StubBroker(), migrate_sqlite=False)
    _pipeline = gw.pipeline.preparing_copy()


def _ready() -> bool:
    return _pipeline is not None


def _prepare(pks: list[int], now: datetime) -> list[Prepared]:
    assert _pipeline is not None, "the preparing process did not start"
    return _pipeline.prepare_many(pks, now=now)
