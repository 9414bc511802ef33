"""Runners: start the API, the SMTP server and the worker, together or as separate processes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

import uvicorn

from gateway.api import create_api
from gateway.app import Gateway, build_smtp_server
from gateway.broker import make_worker
from gateway.jobs import Sweeper

__all__ = ["Parts"]

PART_NAMES = ("api", "smtp", "worker")


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
        self._api_thread: threading.Thread | None = None

    @property
    def api_port(self) -> int:
        """The port the API listens on (the real one, if 0 was asked for)."""
        assert self._api is not None and self._api.servers, "the API is not running"
        return int(self._api.servers[0].sockets[0].getsockname()[1])

    @property
    def smtp_port(self) -> int:
        """The port the SMTP server listens on."""
        assert self._smtp is not None, "the SMTP server is not running"
        return int(self._smtp.bound_port)

    def start(self, *, api_in_thread: bool = True) -> None:
        """Start the parts; with ``api_in_thread=False`` the caller runs :meth:`run_api` itself."""
        s = self.gw.settings
        if "worker" in self.parts:
            self._worker = make_worker(self.gw.jobs.broker, threads=s.worker_threads)
            self._worker.start()
            self._sweeper = Sweeper(self.gw.sweep, interval=self._sweep_interval)
            self._sweeper.start()
        if "smtp" in self.parts:
            self.gw.db.mail.start()  # commits what the SMTP server accepts
            self._storing = True
            self._smtp = build_smtp_server(self.gw)
            self._smtp.start()
        if "api" in self.parts:
            config = uvicorn.Config(
                create_api(self.gw), host=s.api_host, port=s.api_port, log_level="warning", lifespan="off"
            )
            self._api = uvicorn.Server(config)
            if api_in_thread:
                self._api_thread = threading.Thread(target=self._api.run, name="gateway-api", daemon=True)
                self._api_thread.start()
                deadline = time.monotonic() + 10
                while not self._api.started:
                    if time.monotonic() > deadline or not self._api_thread.is_alive():
                        raise RuntimeError(f"the API did not start on {s.api_host}:{s.api_port}")
                    time.sleep(0.01)

    def run_api(self) -> None:
        """Serve the API in this thread until interrupted."""
        assert self._api is not None
        self._api.run()

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
            lines.append(f"worker  {s.worker_threads} threads on the {broker}")
        return lines

    def stop(self) -> None:
        """Stop every started part: the API and SMTP first (no new work), then the worker."""
        if self._api is not None:
            self.gw.hub.close()  # end the Messenger's event streams, or the server waits for them
            self._api.should_exit = True
            if self._api_thread is not None:
                self._api_thread.join(timeout=10)
        if self._smtp is not None:
            self._smtp.stop()  # graceful: transactions in flight finish, new ones get 421
        if self._storing:
            self.gw.db.mail.stop()  # commits what was accepted before the stop
        if self._sweeper is not None:
            self._sweeper.stop()
        if self._worker is not None:
            self._worker.stop(timeout=10_000)
            close = getattr(self.gw.sender, "close", None)
            if close is not None:
                close()  # the relay connections the worker threads kept open

    def __enter__(self) -> Parts:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
