"""The SMTP (or LMTP) server around the handler: connection cap, timeouts, graceful stop, SO_REUSEPORT.

aiosmtpd's :class:`~aiosmtpd.smtp.SMTP` (or :class:`~aiosmtpd.lmtp.LMTP`) is the asyncio protocol, one
object per connection, all on one event loop. :class:`InboundServer` runs that loop on its own thread
and listens with ``loop.create_server(factory)``, the programmatic use aiosmtpd documents; its
``Controller`` is not used because it cannot bind with ``SO_REUSEPORT`` and its start-up probe may
reach a sibling process sharing the port.

The protocol subclass drives aiosmtpd through its public surface only: constructor arguments
(``timeout``, ``data_size_limit``, ``hostname``, ``tls_context``, ``loop``...), the asyncio callbacks
``connection_made``/``connection_lost``/``data_received``, the ``smtp_DATA`` command method and
``push``. One private method stays overridden, ``_getaddr`` (see its docstring): it is a third of the
event loop's time per message, and a test checks it answers exactly as the installed aiosmtpd's.

:class:`ConnectionGate` counts the connections (no locking needed: one loop), refuses beyond the cap
with ``421`` and, while stopping, refuses new connections and new transactions, waits for the
transactions in flight, then closes what is left with ``421``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any, AnyStr, cast

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

from gateway.errors import MessageTooBig, ShuttingDown, TooManyConnections
from gateway.metrics import SMTP_CONNECTIONS, SMTP_REPLIES, child
from inbound.rejections import smtp_reply

__all__ = ["ConnectionGate", "InboundServer", "ServerLimits", "tls_context"]

log = logging.getLogger(__name__)

#: Seconds a client may stay silent between commands (RFC 5321 suggests at least 5 minutes).
DEFAULT_IDLE_TIMEOUT = 300.0
#: Seconds a client has to send the whole message once it said DATA (slow clients are cut off).
DEFAULT_DATA_TIMEOUT = 600.0
#: Connections served at once; more get 421.
DEFAULT_MAX_CONNECTIONS = 500
#: Seconds a stop waits for transactions in flight before closing them.
DEFAULT_STOP_GRACE = 30.0
#: Seconds ``start()`` waits for the event loop thread to run.
READY_TIMEOUT = 10.0
#: What the greeting says after the host name (aiosmtpd's default names the software and its version).
GREETING_IDENT = {False: "ESMTP", True: "LMTP"}


@dataclass(frozen=True, kw_only=True)
class ServerLimits:
    """How much the server lets clients take."""

    max_message_bytes: int
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    data_timeout: float = DEFAULT_DATA_TIMEOUT
    stop_grace: float = DEFAULT_STOP_GRACE


class ConnectionGate:
    """The open connections of one server; admits up to ``limit`` of them, none while stopping."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.stopping = False
        self.open: set[_Guarded] = set()

    def admit(self, conn: _Guarded) -> str | None:
        """None if ``conn`` may be served (it is then counted), else the reply that turns it away."""
        if self.stopping:
            child(SMTP_REPLIES, "4xx", "ShuttingDown").inc()
            return smtp_reply(ShuttingDown())
        if len(self.open) >= self.limit:
            child(SMTP_REPLIES, "4xx", "TooManyConnections").inc()
            return smtp_reply(TooManyConnections())
        self.open.add(conn)
        SMTP_CONNECTIONS.inc()
        return None

    def release(self, conn: _Guarded) -> None:
        """Forget ``conn`` (idempotent)."""
        if conn in self.open:
            self.open.discard(conn)
            SMTP_CONNECTIONS.dec()

    def in_flight(self) -> int:
        """Connections in the middle of a transaction (MAIL accepted, DATA not yet answered)."""
        return sum(1 for conn in self.open if conn.envelope is not None and conn.envelope.mail_from)


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
# ``<dot-atom@dot-atom>``, then the end or blanks before a parameter: what get_angle_addr reads to the same
# address and remainder. Anything else (quotes, comments, literals, UTF-8, source routes) takes the full parser.
_PLAIN_ANGLE_ADDR = re.compile(rf"[ \t]*<({_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})*)>(?:[ \t]+(?=[^ \t(])|$)")


class _Guarded(SMTP):
    """aiosmtpd's SMTP with the gate, the idle and DATA timeouts and enhanced status codes on its size refusals.

    Timeouts: a client silent for ``idle_timeout`` outside DATA is disconnected, and one that has not
    finished DATA (message and answer) ``data_timeout`` after saying DATA is cut off. aiosmtpd has one
    public timeout (``timeout``: seconds between valid commands, which would also cut DATA short when
    ``data_timeout`` is the longer), so it gets the longer of the two, as a backstop, and the two
    deadlines are kept here from ``data_received`` and around ``smtp_DATA``.
    """

    def __init__(self, handler: Any, *, gate: ConnectionGate, limits: ServerLimits, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._gate = gate
        self._limits = limits
        limit = limits.max_message_bytes
        too_big = smtp_reply(MessageTooBig(f"Message too big: this server accepts at most {limit} bytes"))
        assert too_big is not None
        self._too_big: str = too_big
        self._refused = False
        self._in_data = False
        self._heard = 0.0
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None:  # a new connection (after STARTTLS aiosmtpd is called again with the TLS transport)
            refusal = self._gate.admit(self)
            if refusal is not None:
                # aiosmtpd never sees this connection: no session, no greeting, just the refusal.
                self._refused = True
                cast(asyncio.WriteTransport, transport).write(refusal.encode() + b"\r\n")
                transport.close()
                return
            self._idle = self.loop.call_later(self._limits.idle_timeout, self._check_idle)
        self._heard = self.loop.time()
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._gate.release(self)
        if self._idle is not None:
            self._idle.cancel()
        if self._refused:
            return  # aiosmtpd's connection_lost expects the session its connection_made would have opened
        super().connection_lost(error)

    def data_received(self, data: bytes) -> None:
        self._heard = self.loop.time()
        super().data_received(data)

    def _check_idle(self) -> None:
        wait = self._heard + self._limits.idle_timeout - self.loop.time()
        if wait > 0 or self._in_data:  # DATA has its own deadline
            self._idle = self.loop.call_later(wait if wait > 0 else self._limits.idle_timeout, self._check_idle)
        else:
            self._time_out("idle timeout")

    def _time_out(self, what: str) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            log.info("%r %s: closing the connection", self.session.peer if self.session else None, what)
            transport.close()

    async def smtp_DATA(self, arg: str) -> None:
        self._in_data = True
        cutoff = self.loop.call_later(self._limits.data_timeout, self._time_out, "DATA timeout")
        try:
            await super().smtp_DATA(arg)
        finally:
            cutoff.cancel()
            self._in_data = False
            self._heard = self.loop.time()  # silence counts from the DATA answer

    async def push(self, status: AnyStr) -> None:
        # aiosmtpd refuses over-size mail itself, before any handler hook: "552 Error: ..." at MAIL when SIZE=
        # is over data_size_limit, and at the end of DATA when the message ran over it. It has no public way to
        # word those replies, so a 552 without an enhanced status code (RFC 3463) is sent as ours: 5.3.4 and
        # the limit. Every 552 is a size refusal (RFC 5321: storage allocation exceeded); the handler's carry 5.3.4.
        if isinstance(status, str) and status.startswith("552 ") and not status.startswith("552 5."):
            await super().push(self._too_big)
        else:
            await super().push(status)

    def hang_up(self, line: bytes) -> None:
        """Send ``line`` and close, unless the connection is already closing. A closing transport may not take
        writes any more (an SSL transport closed twice, as aiosmtpd does on QUIT after STARTTLS, has dropped
        its SSL protocol and raises AttributeError on write), and its client is being let go anyway."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        cast(asyncio.WriteTransport, transport).write(line)
        transport.close()

    def drop(self) -> None:
        """Drop the connection now (nothing more is sent), if it is still there."""
        transport = self.transport
        if transport is not None:
            cast(asyncio.WriteTransport, transport).abort()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd 1.4's own MAIL/RCPT address parsing, answering alike, but cheaper: it skips the
        ``typing.Protocol`` class aiosmtpd defines on every call, and reads the usual ``<atom@atom>``
        form with one regular expression instead of the email package's full parser (together about
        a third of the event loop's time per message).

        The one private aiosmtpd method overridden here, kept because it pays for itself; aiosmtpd has
        no public hook for address parsing. ``tests/unit/test_smtp_addresses.py`` checks it against
        the installed aiosmtpd's ``SMTP._getaddr`` (a table of forms and generated ones): an aiosmtpd
        upgrade that changes or renames it fails there."""
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
        limit: int = self.local_part_limit
        if limit and len(addr.rpartition("@")[0]) > limit:
            return None, None
        return addr, rest


class _GuardedLMTP(_Guarded, LMTP):
    """LMTP (RFC 2033: LHLO, one DATA answer per recipient) with the same guards."""


def tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server TLS context for STARTTLS from a PEM certificate (chain) and key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


class InboundServer:
    """Serves SMTP (or LMTP) with ``handler`` on its own thread and event loop; ``stop()`` is graceful.

    ``hostname`` is the name the greeting and the EHLO answer give (None: the machine's FQDN); the
    greeting is ``220 <hostname> ESMTP`` (or ``LMTP``), without the software or its version."""

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
        hostname: str | None = None,
    ) -> None:
        self.handler = handler
        self.hostname = hostname
        self.host = host
        self.port = port
        self.limits = limits
        self.tls = tls
        self.gate = gate if gate is not None else ConnectionGate(limits.max_connections)
        self._lmtp = lmtp
        self._reuse_port = reuse_port
        self._greeting_name = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    def factory(self) -> SMTP:
        """The protocol object for one connection: aiosmtpd's SMTP (or LMTP) with the gate and the limits."""
        kind = _GuardedLMTP if self._lmtp else _Guarded
        limits = self.limits
        return kind(
            self.handler,
            gate=self.gate,
            limits=limits,
            loop=self._loop,
            hostname=self._greeting_name,
            ident=GREETING_IDENT[self._lmtp],
            data_size_limit=limits.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            timeout=max(limits.idle_timeout, limits.data_timeout),  # a backstop: see _Guarded
            tls_context=self.tls,
        )

    def start(self) -> None:
        """Listen (binding errors raise here) and serve on a new thread."""
        if self._thread is not None:
            raise RuntimeError("the SMTP server is already running")
        # aiosmtpd would otherwise look the name up for every connection; the 220 greeting names it.
        self._greeting_name = self.hostname or socket.getfqdn()
        self._loop = loop = asyncio.new_event_loop()
        listening: concurrent.futures.Future[asyncio.Server] = concurrent.futures.Future()
        thread = threading.Thread(target=self._serve, args=(loop, listening), name="inbound-smtp", daemon=True)
        thread.start()
        try:
            self._server = listening.result(timeout=READY_TIMEOUT)
        except BaseException:
            if not listening.done():  # still not listening: stop the loop whenever it runs
                loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=READY_TIMEOUT)  # it closes the loop
            raise
        self._thread = thread

    def _serve(self, loop: asyncio.AbstractEventLoop, listening: concurrent.futures.Future[asyncio.Server]) -> None:
        asyncio.set_event_loop(loop)
        try:
            self.factory()  # a broken factory fails start(), not every connection
            server = loop.run_until_complete(
                loop.create_server(self.factory, host=self.host, port=self.port, reuse_port=self._reuse_port)
            )
        except Exception as error:  # noqa: BLE001 - raised by start()
            listening.set_exception(error)
            loop.close()
            return
        loop.call_soon(listening.set_result, server)
        try:
            loop.run_forever()
        finally:
            self._shut(loop, server)

    def _shut(self, loop: asyncio.AbstractEventLoop, server: asyncio.Server) -> None:
        """On the server's thread, once its loop stopped: stop listening, drop what is left, end the tasks."""
        server.close()
        for conn in list(self.gate.open):
            _quietly(conn.drop)
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(server.wait_closed())
        loop.close()

    @property
    def bound_port(self) -> int:
        """The port actually listened on (useful when 0 was asked for)."""
        assert self._server is not None, "the SMTP server is not running"
        return int(self._server.sockets[0].getsockname()[1])

    def stop(self, no_assert: bool = False) -> None:
        """Refuse new connections and transactions (421), let those in flight finish, then stop (idempotent).

        ``no_assert`` is accepted for callers of aiosmtpd's ``Controller.stop``; stopping a server
        that is not running does nothing either way."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if loop.is_running():
            drained = asyncio.run_coroutine_threadsafe(self._drain(), loop)
            drained.result(timeout=self.limits.stop_grace + 5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._thread = self._server = None

    async def _drain(self) -> None:
        self.gate.stopping = True
        deadline = time.monotonic() + self.limits.stop_grace
        while self.gate.in_flight() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        goodbye = (smtp_reply(ShuttingDown()) or "").encode() + b"\r\n"
        for conn in list(self.gate.open):
            _quietly(conn.hang_up, goodbye)


def _quietly(close: Any, *args: Any) -> None:
    """Call ``close``; a connection that cannot be closed cleanly must not stop the others from being closed."""
    try:
        close(*args)
    except Exception:
        log.warning("could not close an SMTP connection", exc_info=True)
