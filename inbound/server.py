"""The SMTP (or LMTP) listener around the handler: connection cap, timeouts, graceful stop, SO_REUSEPORT.

aiosmtpd runs one protocol object per connection on one event loop; :class:`ConnectionGate`
counts them (no locking needed: one loop), refuses beyond the cap with ``421`` and, while
stopping, refuses new connections and new transactions, waits for the transactions in flight,
then closes what is left with ``421``.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from dataclasses import dataclass
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

from gateway.errors import MessageTooBig, ShuttingDown, TooManyConnections
from inbound.rejections import smtp_reply

__all__ = ["ConnectionGate", "InboundServer", "ServerLimits", "tls_context"]

#: Seconds a client may stay silent between commands (RFC 5321 suggests at least 5 minutes).
DEFAULT_IDLE_TIMEOUT = 300.0
#: Seconds a client has to send the whole message once it said DATA (slow clients are cut off).
DEFAULT_DATA_TIMEOUT = 600.0
#: Connections served at once; more get 421.
DEFAULT_MAX_CONNECTIONS = 500
#: Seconds a stop waits for transactions in flight before closing them.
DEFAULT_STOP_GRACE = 30.0


@dataclass(frozen=True, kw_only=True)
class ServerLimits:
    """How much the listener lets clients take."""

    max_message_bytes: int
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    data_timeout: float = DEFAULT_DATA_TIMEOUT
    stop_grace: float = DEFAULT_STOP_GRACE


class ConnectionGate:
    """The open connections of one listener; admits up to ``limit`` of them, none while stopping."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.stopping = False
        self.open: set[Any] = set()

    def admit(self, conn: Any) -> str | None:
        """None if ``conn`` may be served (it is then counted), else the reply that turns it away."""
        if self.stopping:
            return smtp_reply(ShuttingDown())
        if len(self.open) >= self.limit:
            return smtp_reply(TooManyConnections())
        self.open.add(conn)
        return None

    def release(self, conn: Any) -> None:
        """Forget ``conn`` (idempotent)."""
        self.open.discard(conn)

    def in_flight(self) -> int:
        """Connections in the middle of a transaction (MAIL accepted, DATA not yet answered)."""
        return sum(1 for conn in self.open if conn.envelope is not None and conn.envelope.mail_from)


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
# ``<dot-atom@dot-atom>``, then the end or blanks before a parameter: what get_angle_addr reads to the same
# address and remainder. Anything else (quotes, comments, literals, UTF-8, source routes) takes the full parser.
_PLAIN_ANGLE_ADDR = re.compile(rf"[ \t]*<({_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})*)>(?:[ \t]+(?=[^ \t(])|$)")


class _Guarded:
    """Mixin for aiosmtpd's SMTP/LMTP: the gate, the DATA timeout and enhanced status codes on stock replies."""

    _gate: ConnectionGate
    _data_timeout: float
    _restated: dict[str, str]

    def _setup(self, gate: ConnectionGate, limits: ServerLimits) -> None:
        self._gate = gate
        self._data_timeout = limits.data_timeout
        limit = limits.max_message_bytes
        too_big = smtp_reply(MessageTooBig(f"Message too big: this server accepts at most {limit} bytes"))
        assert too_big is not None
        # aiosmtpd's own replies, restated with enhanced status codes (RFC 3463) and a reason.
        self._restated = {
            "552 Error: message size exceeds fixed maximum message size": too_big,
            "552 Error: Too much mail data": too_big,
        }

    async def _handle_client(self) -> None:
        refusal = self._gate.admit(self)
        if refusal is not None:
            transport: Any = self.transport  # type: ignore[attr-defined]
            transport.write(refusal.encode() + b"\r\n")
            transport.close()
            return
        await super()._handle_client()  # type: ignore[misc]

    def connection_lost(self, error: Exception | None) -> None:
        self._gate.release(self)
        super().connection_lost(error)  # type: ignore[misc]

    async def smtp_DATA(self, arg: str) -> None:
        self._reset_timeout(self._data_timeout)  # type: ignore[attr-defined]
        await super().smtp_DATA(arg)  # type: ignore[misc]

    async def push(self, status: Any) -> None:
        if isinstance(status, str):
            status = self._restated.get(status, status)
        await super().push(status)  # type: ignore[misc]

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd 1.4's own MAIL/RCPT address parsing, answering alike, but cheaper: it skips the
        ``typing.Protocol`` class aiosmtpd defines on every call, and reads the usual ``<atom@atom>``
        form with one regular expression instead of the email package's full parser (together about
        a third of the event loop's time per message)."""
        if not arg:
            return "", ""
        plain = _PLAIN_ANGLE_ADDR.match(arg)
        if plain is not None:
            addr, rest = plain.group(1), arg[plain.end():]
        else:
            try:
                address, rest = get_angle_addr(arg) if arg.lstrip().startswith("<") else get_addr_spec(arg)
            except HeaderParseError:
                return None, None
            addr = address.addr_spec
        limit: int = self.local_part_limit  # type: ignore[attr-defined]
        if limit and len(addr.rpartition("@")[0]) > limit:
            return None, None
        return addr, rest


class _GuardedSMTP(_Guarded, SMTP):
    def __init__(self, handler: Any, *, gate: ConnectionGate, limits: ServerLimits, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._setup(gate, limits)


class _GuardedLMTP(_Guarded, LMTP):
    def __init__(self, handler: Any, *, gate: ConnectionGate, limits: ServerLimits, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._setup(gate, limits)


def tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server TLS context for STARTTLS from a PEM certificate (chain) and key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


class InboundServer(Controller):
    """Runs the listener on its own thread and event loop; ``stop()`` is graceful."""

    def __init__(
        self,
        handler: Any,
        *,
        host: str,
        port: int,
        limits: ServerLimits,
        tls: ssl.SSLContext | None = None,
        lmtp: bool = False,
        reuse_port: bool = False,
        gate: ConnectionGate | None = None,
    ) -> None:
        super().__init__(
            handler,
            hostname=host,
            port=port,
            data_size_limit=limits.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            timeout=limits.idle_timeout,
            tls_context=tls,
            ready_timeout=10,
        )
        self.gate = gate if gate is not None else ConnectionGate(limits.max_connections)
        self.limits = limits
        self._lmtp = lmtp
        self._reuse_port = reuse_port

    def factory(self) -> SMTP:
        kind = _GuardedLMTP if self._lmtp else _GuardedSMTP
        kwargs = {**self.SMTP_kwargs, "timeout": self.limits.idle_timeout,
                  "data_size_limit": self.limits.max_message_bytes}
        return kind(self.handler, gate=self.gate, limits=self.limits, **kwargs)

    def _create_server(self) -> Any:
        return self.loop.create_server(
            self._factory_invoker, host=self.hostname, port=self.port, reuse_port=self._reuse_port
        )

    def _trigger_server(self) -> None:
        # With SO_REUSEPORT the kernel may hand the probe connection to a sibling process: probe until ours answers.
        for _ in range(200 if self._reuse_port else 1):
            super()._trigger_server()  # type: ignore[no-untyped-call]
            if self._factory_invoked.wait(0.05):
                return

    @property
    def bound_port(self) -> int:
        """The port actually listened on (useful when 0 was asked for)."""
        assert self.server is not None, "the listener is not running"
        return int(self.server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    def stop(self, no_assert: bool = False) -> None:
        """Refuse new connections and transactions (421), let those in flight finish, then stop (idempotent)."""
        if self._thread is None:
            return
        if self.loop.is_running():
            drained = asyncio.run_coroutine_threadsafe(self._drain(), self.loop)
            drained.result(timeout=self.limits.stop_grace + 5)
        super().stop(no_assert=no_assert)

    async def _drain(self) -> None:
        self.gate.stopping = True
        deadline = time.monotonic() + self.limits.stop_grace
        while self.gate.in_flight() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        goodbye = (smtp_reply(ShuttingDown()) or "").encode() + b"\r\n"
        for conn in list(self.gate.open):
            if conn.transport is not None:
                conn.transport.write(goodbye)
                conn.transport.close()
