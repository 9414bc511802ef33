"""The split topology for benchmarks: ``web2chat-gateway api``, ``smtp`` and worker processes on PostgreSQL and Redis.

Used by ``bench_reply_path.py``, ``bench_reads.py`` and ``faults/run_faults.py``. :class:`Split` makes a fresh
schema of ``postgresql://postgres@127.0.0.1:5432/test`` (dropped by ``stop()``) and uses one Redis database
(flushed before and after; the shared redis-server is never restarted), migrates, then starts each part as its
own process, configured through ``GATEWAY_*`` variables as an operator would. Loopback only.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import json
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
#: Seconds a part has to get ready.
START_TIMEOUT = 60.0

__all__ = ["PG_ADMIN", "Part", "Split", "cpu_of_family", "die_with_parent", "free_ports", "reachable", "request"]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def die_with_parent() -> None:
    """In a started process, before exec: SIGTERM it if the bench dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _cpu_of(pid: int) -> float:
    """Seconds of CPU process ``pid`` used (utime + stime, and that of its children it waited for)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # gone meanwhile
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def cpu_of_family(pid: int) -> float:
    """CPU seconds of ``pid`` and every process below it (a gateway's preparing processes)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in task.read_text().split())
    return sum(_cpu_of(p) for p in found)


def reachable(redis_db: int) -> str | None:
    """None when PostgreSQL and Redis answer on loopback; otherwise why not."""
    try:
        pg = subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-t", "2"], capture_output=True,
                            timeout=10)
        if pg.returncode != 0:
            return "PostgreSQL does not answer on 127.0.0.1:5432"
        if _redis_cli(redis_db, "PING") != "PONG":
            return "Redis does not answer on 127.0.0.1:6379"
    except (OSError, subprocess.SubprocessError) as error:
        return f"cannot check PostgreSQL and Redis: {error}"
    return None


def _redis_cli(db: int, *args: str) -> str:
    return subprocess.run(["redis-cli", "-n", str(db), *args], capture_output=True, text=True, timeout=10,
                          check=True).stdout.strip()


def _executable() -> str:
    return str(Path(sys.executable).parent / "web2chat-gateway")


class Part:
    """One ``web2chat-gateway <command>`` process; ``start()`` returns once it serves."""

    def __init__(self, name: str, command: str, env: dict[str, str], folder: Path, api_port: int,
                 smtp_port: int) -> None:
        self.name, self.command, self.env, self.folder = name, command, env, folder
        self.api_port, self.smtp_port = api_port, smtp_port
        self.proc: subprocess.Popen[bytes] | None = None
        self.generation = 0

    @property
    def log_path(self) -> Path:
        return self.folder / f"{self.name}-{self.generation}.log"

    def start(self) -> None:
        self.generation += 1
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen([_executable(), self.command], cwd=ROOT, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                         preexec_fn=die_with_parent)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited with {self.proc.returncode}: see {self.log_path}")
            try:
                if self.command == "api":
                    if request(self.api_port, "GET", "/healthz", None, "")[0] == 200:
                        return
                elif self.command == "smtp":
                    with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=2) as s:
                        s.noop()
                    return
                else:  # a worker listens on nothing: alive after 2 s is ready
                    time.sleep(2.0)
                    if self.proc.poll() is None:
                        return
            except (OSError, smtplib.SMTPException):
                pass
            time.sleep(0.1)
        raise SystemExit(f"{self.name} did not get ready within {START_TIMEOUT:.0f} s")

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        stop_process(self.proc, self.name)

    def cpu_seconds(self) -> float:
        return cpu_of_family(self.proc.pid) if self.proc is not None and self.proc.poll() is None else 0.0


def stop_process(proc: subprocess.Popen[bytes] | None, name: str) -> None:
    """SIGTERM ``proc`` (if it still runs) and wait; SIGKILL it, saying so, if it has not stopped within 20 s."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        print(f"{name} did not stop within 20 s of SIGTERM; killing it", flush=True)
        proc.kill()
        proc.wait(timeout=10)


def request(port: int, method: str, path: str, body: Any, key: str) -> tuple[int, bytes]:
    """One JSON call to ``127.0.0.1:port`` with ``key`` as the bearer token."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Split:
    """``api``, ``smtp`` and ``workers`` worker processes on a fresh PostgreSQL schema and Redis database ``redis_db``.

    ``env`` holds the ``GATEWAY_*`` settings every part shares (keys, secrets, webhook); the store, the
    broker and the ports are added here."""

    def __init__(self, folder: Path, env: dict[str, str], *, key: str, workers: int = 2, redis_db: int = 6,
                 prefix: str = "bench") -> None:
        self.folder, self.key, self.redis_db = folder, key, redis_db
        self.schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.db_url = f"{PG_ADMIN}?options=-csearch_path%3D{self.schema}"
        self.redis_url = f"redis://127.0.0.1:6379/{redis_db}"
        self.api_port, self.smtp_port = free_ports(2)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        self.env.update(env)
        self.env.update({
            "GATEWAY_DATABASE_URL": self.db_url, "GATEWAY_REDIS_URL": self.redis_url,
            "GATEWAY_API_PORT": str(self.api_port), "GATEWAY_SMTP_PORT": str(self.smtp_port),
        })
        names = [("api", "api"), ("smtp", "smtp")] + [(f"worker-{chr(97 + i)}", "worker") for i in range(workers)]
        self.parts = {name: Part(name, command, self.env, folder, self.api_port, self.smtp_port)
                      for name, command in names}
        self._schema_made = False

    def _admin(self, sql: str) -> None:
        from sqlalchemy import create_engine, text

        admin = create_engine(PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(sql))
        finally:
            admin.dispose()

    def start(self) -> None:
        """Make the schema, migrate it, flush the Redis database, start every part; on failure, stop what started."""
        try:
            self._admin(f'CREATE SCHEMA "{self.schema}"')
            self._schema_made = True
            _redis_cli(self.redis_db, "FLUSHDB")
            subprocess.run([_executable(), "migrate"], cwd=ROOT, env=self.env, check=True, capture_output=True,
                           timeout=120)
            for part in self.parts.values():
                part.start()
        except BaseException:
            self.stop()
            raise

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        """One call to the api part with the help desk's key."""
        return request(self.api_port, method, path, body, self.key)

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by every part and the processes they started."""
        return sum(self.cpu_by_part().values())

    def cpu_by_part(self) -> dict[str, float]:
        return {name: part.cpu_seconds() for name, part in self.parts.items()}

    def stop(self) -> None:
        """Stop every part (SIGTERM), drop the schema, flush the Redis database; each step runs whatever failed."""
        for part in self.parts.values():
            with contextlib.suppress(Exception):
                part.stop()
        if self._schema_made:
            with contextlib.suppress(Exception):
                self._admin(f'DROP SCHEMA "{self.schema}" CASCADE')
            self._schema_made = False
        with contextlib.suppress(Exception):
            _redis_cli(self.redis_db, "FLUSHDB")

    def log_problems(self) -> list[str]:
        """Warning and error lines of every part's logs."""
        found = []
        for log in sorted(self.folder.glob("*.log")):
            if not any(log.name.startswith(f"{name}-") for name in self.parts):
                continue
            for line in log.read_text(errors="replace").splitlines():
                if re.search(r"WARNING|ERROR|CRITICAL|Traceback", line):
                    found.append(f"{log.name}: {line}")
        return found
