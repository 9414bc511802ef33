"""The ``web2chat-gateway`` process as an operator runs it: a graceful stop on SIGTERM and SIGINT
(the SMTP transaction in flight gets its answer, exit 0), and one clear line when a port is taken."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway.app import build_gateway
from tests.helpers import API_KEY, CUSTOMER, open_ticket, settings_for, wait_for
from tests.services import free_port

COMMAND = str(Path(sys.executable).with_name("web2chat-gateway"))
#: Seconds a test waits for the process to start, stop or answer.
PATIENCE = 30.0


@dataclass
class Gateway:
    """A running ``web2chat-gateway`` process and what it printed so far."""

    process: subprocess.Popen[str]
    smtp_port: int
    api_port: int
    out: list[str] = field(default_factory=list)

    def printed(self, text: str) -> bool:
        return any(text in line for line in self.out)

    def exit_code(self) -> int:
        return self.process.wait(timeout=PATIENCE)


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The GATEWAY_* variables of ``settings_for(tmp_path)``'s gateway, on free ports."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.sqlite3'}",
        "GATEWAY_API_PORT": str(free_port()),
        "GATEWAY_SMTP_PORT": str(free_port()),
        "GATEWAY_API_KEYS": API_KEY,
        "GATEWAY_SECRET_KEYS": "3:test-secret-key-number-three",
        "GATEWAY_REPLY_DOMAIN": "reply.example.test",
        "GATEWAY_WORKER_THREADS": "2",
        **extra,
    }


def start(command: str, env: dict[str, str], *, ready: str | None = None) -> Gateway:
    """Start ``web2chat-gateway command``; wait until it printed ``ready`` (if given)."""
    process = subprocess.Popen(
        [COMMAND, command], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    running = Gateway(process, int(env["GATEWAY_SMTP_PORT"]), int(env["GATEWAY_API_PORT"]))

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            running.out.append(line)

    threading.Thread(target=read, daemon=True).start()
    if ready is not None:
        wait_for(lambda: running.printed(ready) or process.poll() is not None, timeout=PATIENCE, what=ready)
        assert running.printed(ready), "".join(running.out)
    return running


@pytest.fixture
def stopped() -> Iterator[list[Gateway]]:
    """Processes a test started; any still running afterwards is killed."""
    started: list[Gateway] = []
    yield started
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()


class Client:
    """A line-at-a-time SMTP client on a raw socket, so a test can stop in the middle of DATA."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
        self.file = self.sock.makefile("rb")

    def reply(self) -> str:
        """The next reply (the last line of a multi-line one)."""
        while True:
            line = self.file.readline().decode()
            if len(line) < 4 or line[3] != "-":
                return line

    def send(self, line: str) -> str:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def greeting(port: int) -> str:
    """What a new connection is told first ("" when refused or closed without a word)."""
    try:
        client = Client(port)
    except ConnectionRefusedError:
        return ""
    try:
        return client.reply()
    except OSError:
        return ""
    finally:
        client.close()


def test_sigterm_lets_the_smtp_transaction_in_flight_finish_and_exits_0(
    tmp_path: Path, stopped: list[Gateway]
) -> None:
    """SIGTERM to serve mid-DATA: new connections get 421 (or are refused), the DATA gets 250, exit 0."""
    gw = build_gateway(settings_for(tmp_path))
    ticket = open_ticket(gw)
    reply_to = gw.keyring.address_for(ticket.key, ticket.customer.email)
    running = start("serve", environment(tmp_path), ready="worker ")
    stopped.append(running)
    client = Client(running.smtp_port)
    assert client.reply().startswith("220 ")
    assert client.send("EHLO client.example.test").startswith("250")
    assert client.send(f"MAIL FROM:<{CUSTOMER}>").startswith("250")
    assert client.send(f"RCPT TO:<{reply_to}>").startswith("250")
    assert client.send("DATA").startswith("354")
    client.sock.sendall(f"From: <{CUSTOMER}>\r\nTo: <{reply_to}>\r\nSubject: Re: Printer\r\n".encode())

    running.process.send_signal(signal.SIGTERM)
    refused = wait_for(lambda: (lambda g: g if not g.startswith("220") else None)(greeting(running.smtp_port)),
                       timeout=PATIENCE, what="new connections to be turned away") or ""
    assert refused == "" or refused.startswith("421 "), refused

    client.sock.sendall(b"Message-ID: <stop-1@mail.example.test>\r\n\r\nIt works again.\r\n.\r\n")
    answer = client.reply()
    client.close()
    assert answer.startswith("250 "), answer
    assert 0 == running.exit_code(), "".join(running.out)


@pytest.mark.parametrize(("command", "signum"), [
    ("serve", signal.SIGINT),
    ("api", signal.SIGTERM),
    ("smtp", signal.SIGTERM),
    ("worker", signal.SIGTERM),
])
def test_every_command_stops_on_a_signal_with_exit_0(
    tmp_path: Path, stopped: list[Gateway], command: str, signum: signal.Signals
) -> None:
    """serve, api, smtp and worker stop on SIGTERM or SIGINT and exit 0."""
    running = start(command, environment(tmp_path), ready=command if command != "serve" else "worker ")
    stopped.append(running)
    running.process.send_signal(signum)
    assert 0 == running.exit_code(), "".join(running.out)


def test_a_part_whose_stop_fails_does_not_keep_the_others_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """When the SMTP server's stop raises, it is logged and named, and the committer and sweeper still stop."""
    from dramatiq.brokers.stub import StubBroker

    from gateway.run import Parts
    from inbound.server import InboundServer

    real_stop = InboundServer.stop
    failing: list[InboundServer] = []

    def broken_stop(server: InboundServer, no_assert: bool = False) -> None:
        failing.append(server)
        raise RuntimeError("the SMTP server's stop broke")

    broker = StubBroker()
    running = Parts(build_gateway(settings_for(tmp_path), broker=broker), ("smtp", "worker"), sweep_interval=0.2)
    running.start()
    monkeypatch.setattr(InboundServer, "stop", broken_stop)
    try:
        assert ["the SMTP server"] == running.stop()
    finally:
        for server in failing:
            real_stop(server)
        broker.close()
    alive = {t.name for t in threading.enumerate()}
    assert not alive & {"gateway-commit", "gateway-sweeper"}, alive
    assert "stopping the SMTP server failed" in caplog.text


@pytest.mark.parametrize("setting", ["GATEWAY_SMTP_PORT", "GATEWAY_API_PORT"])
def test_a_port_in_use_is_one_line_naming_the_setting_and_nothing_else(tmp_path: Path, setting: str) -> None:
    """serve on a taken port prints one line naming the variable, the port and the host (no banner, no
    API key) and exits non-zero."""
    env = environment(tmp_path)
    del env["GATEWAY_API_KEYS"]  # a generated key would be printed in the banner
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(env[setting])))
        taken.listen()
        finished = subprocess.run([COMMAND, "serve"], env=env, capture_output=True, text=True, timeout=PATIENCE)
    assert 0 != finished.returncode
    assert "" == finished.stdout
    assert [f"web2chat-gateway: {setting} {env[setting]} is in use on 127.0.0.1"] == finished.stderr.splitlines()


def test_a_separate_smtp_process_logs_json_and_serves_its_metrics(tmp_path: Path, stopped: list[Gateway]) -> None:
    """``smtp`` with GATEWAY_LOG_FORMAT=json and GATEWAY_METRICS_PORT: a refusal is one JSON line on its
    output and counted on its own /metrics; it still stops with exit 0."""
    import json
    import urllib.request

    metrics_port = free_port()
    env = environment(tmp_path, GATEWAY_LOG_FORMAT="json", GATEWAY_METRICS_PORT=str(metrics_port))
    running = start("smtp", env, ready="metrics http://")
    stopped.append(running)
    client = Client(running.smtp_port)
    assert client.reply().startswith("220")
    client.send("EHLO client.example.test")
    client.send("MAIL FROM:<ada@customer.example.test>")
    assert client.send("RCPT TO:<reply+forged@reply.example.test>").startswith("550")
    client.send("QUIT")
    client.close()
    wait_for(lambda: running.printed('"event": "smtp.refused"'), what="the JSON refusal line")
    line = json.loads(next(line for line in running.out if '"smtp.refused"' in line))
    assert ("550 5.1.1", "UnknownRecipient") == (line["code"], line["reason"])
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=PATIENCE).read().decode()
    assert 'w2c_smtp_replies_total{code_class="5xx",reason="UnknownRecipient"} 1.0' in text
    running.process.send_signal(signal.SIGTERM)
    assert 0 == running.exit_code()


def test_the_api_socket_says_tcp_so_asyncio_turns_nagle_off() -> None:
    """The pre-bound API socket carries IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets, and
    without it each keep-alive answer waited for the client's delayed ACK (about 40 ms)."""
    from gateway.run import _listen

    sock = _listen("127.0.0.1", 0, setting="API_PORT")
    try:
        assert socket.IPPROTO_TCP == sock.proto
    finally:
        sock.close()
