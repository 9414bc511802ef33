"""Runners: start the API, the SMTP server and the worker, together or as separate processes.

:class:`Parts` listens first (a port that cannot be had raises :class:`~gateway.errors.CannotListen`
before anything runs), then serves and works; its ``stop()`` is graceful and runs every step even
when one fails. The API runs on a thread of its own, so signals are the caller's (``gateway.cli``),
never uvicorn's: uvicorn re-raises a captured SIGTERM once it has stopped, which would end the
process before the SMTP server and the worker had stopped.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import uvicorn

from gateway.api import create_api
from gateway.app import Gateway, build_smtp_server
from gateway.broker import make_worker
from gateway.errors import CannotListen
from gateway.jobs import Sweeper
from gateway.settings import PREFIX

__all__ = ["PART_NAMES", "Parts"]

log = logging.getLogger(__name__)

#: Every part a process can run.
PART_NAMES = ("api", "smtp", "worker")
#: Seconds ``start()`` waits for the API to serve.
API_START_TIMEOUT = 10.0
#: Seconds ``stop()`` waits for the API's requests in flight.
API_STOP_TIMEOUT = 10.0
#: Milliseconds ``stop()`` waits for the worker's jobs in flight (the others go back to the broker).
WORKER_STOP_TIMEOUT_MS = 10_000


class Parts:
    """Starts and stops the chosen parts of one gateway in this process."""

    def __init__(self, gw: Gateway, parts: Iterable[str] = PART_NAMES, *, sweep_interval: float = 5.0) -> None:
        self.gw = gw
        self.parts = tuple(parts)
        unknown = set(self.parts) - set(PART_NAMES)
        if unknown:
            raise ValueError(f"unknown parts: {sorted(unknown)}")
        self._sweep_interval = sweep_interval
        self._worker: Any = None
        self._sweeper: Sweeper | None = None
        self._smtp: Any = None
        self._storing = False
        self._api: uvicorn.Server | None = None
        self._api_socket: socket.socket | None = None
        self._api_thread: threading.Thread | None = None

    @property
    def api_port(self) -> int:
        """The port the API listens on (the real one, if 0 was asked for)."""
        assert self._api_socket is not None, "the API is not running"
        return int(self._api_socket.getsockname()[1])

    @property
    def smtp_port(self) -> int:
        """The port the SMTP server listens on."""
        assert self._smtp is not None, "the SMTP server is not running"
        return int(self._smtp.bound_port)

    def start(self) -> None:
        """Listen on the ports, then serve and work; on any failure, stop what had started and raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        s = self.gw.settings
        if "api" in self.parts:
            self._api_socket = _listen(s.api_host, s.api_port, setting="API_PORT")
        if "smtp" in self.parts:
            self.gw.db.mail.start()  # commits what the SMTP server accepts
            self._storing = True
            server = build_smtp_server(self.gw)
            try:
                server.start()
            except OSError as error:
                raise _cannot_listen("SMTP_PORT", s.smtp_host, s.smtp_port, error) from None
            self._smtp = server
        if "api" in self.parts:
            assert self._api_socket is not None
            # log_config=None: uvicorn's lines (its access log included) go through the process's one
            # handler (gateway.logs), in its format.
            config = uvicorn.Config(create_api(self.gw), log_level=s.log_level, log_config=None, lifespan="off")
            self._api = api = uvicorn.Server(config)
            sockets = [self._api_socket]
            self._api_thread = threading.Thread(target=api.run, args=(sockets,), name="gateway-api", daemon=True)
            self._api_thread.start()
            deadline = time.monotonic() + API_START_TIMEOUT
            while not api.started:
                if time.monotonic() > deadline or not self._api_thread.is_alive():
                    raise RuntimeError(f"the API did not start on {s.api_host}:{s.api_port}")
                time.sleep(0.01)
        if "worker" in self.parts:
            if self.gw.preparing is not None:
                self.gw.preparing.start()
            self._worker = make_worker(self.gw.jobs.broker, threads=s.worker_threads)
            self._worker.start()
            self._sweeper = Sweeper(self.gw.sweep, interval=self._sweep_interval)
            self._sweeper.start()

    def where(self) -> list[str]:
        """One line per running part saying where it listens."""
        s = self.gw.settings
        lines = []
        if self._api is not None:
            lines.append(f"api     http://{s.api_host}:{s.api_port}  (OpenAPI at /docs)")
        if self._smtp is not None:
            lines.append(f"smtp    {s.smtp_host}:{s.smtp_port}  (replies to reply+<token>@{s.reply_domain})")
        if self._worker is not None:
            broker = "redis " + (s.redis_url or "") if s.redis_url else "in-process broker"
            preparing = self.gw.preparing.processes if self.gw.preparing is not None else 0
            lines.append(f"worker  {s.worker_threads} threads and {preparing} preparing processes on the {broker}")
        return lines

    def stop(self) -> list[str]:
        """Stop every started part, gracefully: new SMTP connections and transactions get ``421`` and
        the API stops taking requests at once; SMTP transactions and API requests in flight finish; what
        SMTP accepted is committed; the worker finishes its jobs in flight and returns the others to the
        broker. A step that fails is logged and the others still run; returns the steps that failed."""
        failed: list[str] = []

        def step(name: str, action: Callable[[], object]) -> None:
            try:
                action()
            except Exception:
                log.exception("stopping %s failed; stopping the rest", name)
                failed.append(name)

        if self._api is not None:
            step("the Messenger streams", self.gw.hub.close)  # or the API server waits for them
            self._api.should_exit = True  # stops listening now, then waits for its requests
        if self._smtp is not None:
            step("the SMTP server", self._smtp.stop)  # 421 to new sessions, transactions in flight finish
            self._smtp = None
        if self._api_thread is not None:
            thread = self._api_thread
            step("the API", lambda: _join(thread, API_STOP_TIMEOUT, "the API"))
            self._api_thread = None
        if self._api_socket is not None:
            step("the API socket", self._api_socket.close)
            self._api_socket = None
        if self._storing:
            step("the inbound committer", self.gw.db.mail.stop)  # commits what was accepted before the stop
            self._storing = False
        if self._sweeper is not None:
            step("the sweeper", self._sweeper.stop)
            self._sweeper = None
        if self._worker is not None:
            worker = self._worker
            step("the worker", lambda: worker.stop(timeout=WORKER_STOP_TIMEOUT_MS))
            self._worker = None
            if self.gw.preparing is not None:
                step("the preparing processes", self.gw.preparing.close)
            if self.gw.webhook_deliverer is not None:
                step("the webhook posting threads", self.gw.webhook_deliverer.close)
            close = getattr(self.gw.sender, "close", None)
            if close is not None:
                step("the relay connections", close)  # the ones the worker threads kept open
        step("the stored-mail hand-on", self.gw.stored_mail.close)  # sends the messages it still holds
        return failed

    def __enter__(self) -> Parts:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _listen(host: str, port: int, *, setting: str) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (listening starts when the server takes it).

    Made with ``IPPROTO_TCP`` spelled out: asyncio turns Nagle's algorithm off only on sockets whose
    protocol says TCP, and with it on every keep-alive response waited ~40 ms for a delayed ACK."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise _cannot_listen(setting, host, port, error) from None
    return sock


def _cannot_listen(setting: str, host: str, port: int, error: OSError) -> CannotListen:
    if error.errno == errno.EADDRINUSE:
        return CannotListen(f"{PREFIX}{setting} {port} is in use on {host}")
    reason = error.strerror or str(error)
    return CannotListen(f"{PREFIX}{setting} {port} cannot be listened on at {host}: {reason}")


def _join(thread: threading.Thread, timeout: float, what: str) -> None:
    thread.join(timeout=timeout)
    if thread.is_alive():
        raise TimeoutError(f"{what} did not stop within {timeout} s")
