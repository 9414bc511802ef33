"""The SMTP (or LMTP) server around the handler: connection cap, timeouts, graceful stop, SO_REUSEPORT.

aiosmtpd's :class:`~aiosmtpd.smtp.SMTP` (or :class:`~aiosmtpd.lmtp.LMTP`) is the asyncio protocol, one
object per connection, all on one event loop. :class:`InboundServer` runs that loop on its own thread
and listens with ``loop.create_server(factory)``, the programmatic use aiosmtpd documents; its
``Controller`` is not used because it cannot bind with ``SO_REUSEPORT`` and its start-up probe may
reach a sibling process sharing the port.

The protocol subclass drives aiosmtpd through its public surface where it can: constructor arguments
(``timeout``, ``data_size_limit``, ``hostname``, ``tls_context``, ``loop``...), the asyncio callbacks
``connection_made``/``connection_lost``/``data_received``, the ``smtp_DATA`` command method and
``push``. Two private names are used on purpose: ``_getaddr`` is overridden (see its docstring: a third
of the event loop's time per message, and a test checks it answers exactly as the installed aiosmtpd's),
and the replaced ``smtp_DATA`` reads ``self._reader`` to stream the body to a spool file (aiosmtpd 1.4
has no streaming API).

:class:`ConnectionGate` counts the connections, overall and per peer address, and the message bytes in
flight (no locking needed: one loop), refuses beyond the caps with ``421`` and beyond the bytes budget
with ``452 4.3.1``; while stopping, it refuses new connections and new transactions, waits for the
transactions in flight, then closes what is left with ``421``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any, AnyStr, cast

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, syntax

from gateway.errors import (
    GatewayError,
    InsufficientStorage,
    LineTooLong,
    MessageTooBig,
    SessionTooLong,
    ShuttingDown,
    TooManyCommands,
    TooManyConnections,
    TooManyFailures,
    TooManyPeerConnections,
)
from gateway.metrics import SMTP_CONNECTIONS, SMTP_REPLIES, child
from inbound.peer_failures import PeerFailures
from inbound.rejections import printable, smtp_reply

__all__ = ["ConnectionGate", "InboundServer", "ServerLimits", "tls_context"]

log = logging.getLogger(__name__)

#: Seconds a client may stay silent between commands (RFC 5321 suggests at least 5 minutes).
DEFAULT_IDLE_TIMEOUT = 300.0
#: Seconds a client has to send the whole message once it said DATA (slow clients are cut off).
DEFAULT_DATA_TIMEOUT = 600.0
#: Connections served at once; more get 421.
DEFAULT_MAX_CONNECTIONS = 500
#: Connections one peer address may hold at once (0: no per-peer cap).
DEFAULT_MAX_CONNECTIONS_PER_PEER = 50
#: Seconds a session may last, however busy it is (421 and closed; a DATA in progress is answered first).
DEFAULT_MAX_SESSION_SECONDS = 3600.0
#: Commands a session may send per message it delivers: the count restarts at each accepted message.
DEFAULT_MAX_COMMANDS_PER_MESSAGE = 200
#: Refused commands (5xx) before each further refusal is delayed; twice as many end the session with 421.
DEFAULT_MAX_FAILURES = 10
#: Seconds each refusal past ``DEFAULT_MAX_FAILURES`` is delayed.
DEFAULT_FAILURE_DELAY = 1.0
#: Bytes of messages being received or stored at once, all sessions together; beyond: 452 4.3.1.
DEFAULT_MAX_BYTES_IN_FLIGHT = 200 * 1024 * 1024
#: A message body is kept in memory up to this size, on disk (a temporary file) past it.
DEFAULT_SPOOL_THRESHOLD = 1024 * 1024
#: DATA lines are gathered into pieces of about this size before they are counted and spooled.
DATA_CHUNK = 64 * 1024
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
    max_session_seconds: float = DEFAULT_MAX_SESSION_SECONDS
    max_commands_per_message: int = DEFAULT_MAX_COMMANDS_PER_MESSAGE
    max_failures: int = DEFAULT_MAX_FAILURES
    failure_delay: float = DEFAULT_FAILURE_DELAY
    spool_threshold: int = DEFAULT_SPOOL_THRESHOLD


class ConnectionGate:
    """The open connections of one server and the message bytes they hold.

    Admits up to ``limit`` connections, at most ``per_peer`` of them from one address (0: no such cap), none
    while stopping; lets the sessions hold up to ``bytes_budget`` bytes of messages at once (0: no budget)."""

    def __init__(self, limit: int, *, per_peer: int = 0, bytes_budget: int = 0) -> None:
        self.limit = limit
        self.per_peer = per_peer
        self.bytes_budget = bytes_budget
        self.bytes_in_flight = 0
        self.stopping = False
        #: Each open connection and its peer's address.
        self.open: dict[_Guarded, str | None] = {}
        self._peers: dict[str | None, int] = {}
        #: Refused commands by peer address, across sessions (what slows a peer down, see ``_Guarded``).
        self.failures = PeerFailures()

    def admit(self, conn: _Guarded, peer: str | None = None) -> str | None:
        """None if ``conn`` (from address ``peer``) may be served (it is then counted), else the reply that turns
        it away."""
        refusal: GatewayError | None = None
        if self.stopping:
            refusal = ShuttingDown()
        elif len(self.open) >= self.limit:
            refusal = TooManyConnections()
        elif self.per_peer and self._peers.get(peer, 0) >= self.per_peer:
            refusal = TooManyPeerConnections()
        if refusal is not None:
            child(SMTP_REPLIES, "4xx", type(refusal).__name__).inc()
            return smtp_reply(refusal)
        self.open[conn] = peer
        self._peers[peer] = self._peers.get(peer, 0) + 1
        SMTP_CONNECTIONS.inc()
        return None

    def release(self, conn: _Guarded) -> None:
        """Forget ``conn`` (idempotent)."""
        if conn in self.open:
            peer = self.open.pop(conn)
            left = self._peers[peer] - 1
            if left:
                self._peers[peer] = left
            else:
                del self._peers[peer]
            SMTP_CONNECTIONS.dec()

    def connections_from(self, peer: str | None) -> int:
        """How many open connections come from ``peer``."""
        return self._peers.get(peer, 0)

    def spent(self) -> bool:
        """True when the bytes budget is used up (a new DATA is refused with 452 4.3.1)."""
        return bool(self.bytes_budget) and self.bytes_in_flight >= self.bytes_budget

    def reserve(self, size: int) -> bool:
        """Count ``size`` more bytes in flight, if the budget has room for them."""
        if self.bytes_budget and self.bytes_in_flight + size > self.bytes_budget:
            return False
        self.bytes_in_flight += size
        return True

    def free(self, size: int) -> None:
        """Give back ``size`` bytes :meth:`reserve` counted."""
        self.bytes_in_flight -= size

    def in_flight(self) -> int:
        """Connections in the middle of a transaction (MAIL accepted, DATA not yet answered)."""
        return sum(1 for conn in self.open if conn.envelope is not None and conn.envelope.mail_from)


# A reply line may not carry control characters (a bare CR or LF would split it) or lone surrogates (aiosmtpd
# decodes arguments with surrogateescape); CRLF only separates the lines of a multi-line reply.
_UNSAFE_REPLY = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]|\r(?!\n)|(?<!\r)\n")

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
# ``<dot-atom@dot-atom>``, then the end or blanks before a parameter: what get_angle_addr reads to the same
# address and remainder. Anything else (quotes, comments, literals, UTF-8, source routes) takes the full parser.
_PLAIN_ANGLE_ADDR = re.compile(rf"[ \t]*<({_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})*)>(?:[ \t]+(?=[^ \t(])|$)")


class _Guarded(SMTP):
    """aiosmtpd's SMTP with the gate, the per-session limits, the idle and DATA timeouts, a streaming DATA and
    enhanced status codes on its size refusals.

    Timeouts: a client silent for ``idle_timeout`` outside DATA is disconnected, and one that has not
    finished DATA (message and answer) ``data_timeout`` after saying DATA is cut off. aiosmtpd has one
    public timeout (``timeout``: seconds between valid commands, which would also cut DATA short when
    ``data_timeout`` is the longer), so it gets the longer of the two, as a backstop, and the two
    deadlines are kept here from ``data_received`` and around ``smtp_DATA``.

    Per-session limits (each ends the session with ``421 4.7.0`` and closes it): ``max_session_seconds`` (a
    DATA in progress is answered first), ``max_commands_per_message`` commands without an accepted message,
    and twice ``max_failures`` refused commands (each refusal past ``max_failures`` is delayed by
    ``failure_delay`` first). Refusals count against the peer's address, not the session: its score
    (:class:`~inbound.peer_failures.PeerFailures`, which decays and which each delivered message halves) is
    what a new session starts with, so reconnecting does not start afresh. Without a per-address cap
    (``per_peer`` 0: one address carries many clients, a relay in front) they count per session.
    Commands are counted by their replies, in :meth:`push`: each command gets one.
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
        self._session_end: asyncio.TimerHandle | None = None
        self._expired = False
        self._commands = 0
        self._failures = 0  # refusals in this session (counted here only without a per-address cap)
        self._last = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None:  # a new connection (after STARTTLS aiosmtpd is called again with the TLS transport)
            peer = transport.get_extra_info("peername")
            refusal = self._gate.admit(self, peer[0] if isinstance(peer, tuple) and peer else None)
            if refusal is not None:
                # aiosmtpd never sees this connection: no session, no greeting, just the refusal.
                self._refused = True
                cast(asyncio.WriteTransport, transport).write(refusal.encode() + b"\r\n")
                transport.close()
                return
            self._idle = self.loop.call_later(self._limits.idle_timeout, self._check_idle)
            self._session_end = self.loop.call_later(self._limits.max_session_seconds, self._session_over)
        self._heard = self.loop.time()
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._gate.release(self)
        for timer in (self._idle, self._session_end):
            if timer is not None:
                timer.cancel()
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

    def _session_over(self) -> None:
        if self._in_data:
            self._expired = True  # answered first, then ended (see smtp_DATA)
        else:
            self._end(SessionTooLong())

    def _end(self, error: GatewayError) -> None:
        """End the session for ``error`` (a session limit): its 421, then close."""
        line = smtp_reply(error)
        assert line is not None
        child(SMTP_REPLIES, "4xx", type(error).__name__).inc()
        log.info("%r %s: closing the connection", self.session.peer if self.session else None, type(error).__name__)
        self.hang_up(line.encode() + b"\r\n")

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        self._in_data = True
        self._last = ""
        cutoff = self.loop.call_later(self._limits.data_timeout, self._time_out, "DATA timeout")
        try:
            await self._data(arg)
        finally:
            cutoff.cancel()
            self._in_data = False
            self._heard = self.loop.time()  # silence counts from the DATA answer
        if self._last[:1] == "2":
            self._commands = 0  # a message delivered: a new budget of commands
            if self._gate.per_peer:
                self._gate.failures.delivered(self._gate.open.get(self), self.loop.time())
        else:
            self._count(self._last)
        if self._expired:
            self._end(SessionTooLong())

    async def _data(self, arg: str) -> None:
        """aiosmtpd 1.4's ``smtp_DATA``, the same answers, but the body goes to a spool file instead of a list of
        one bytearray per line (several times the message's size in memory), the bytes held count against the
        gate's budget, and the refusals carry enhanced status codes.

        aiosmtpd has no streaming API, so this replaces its ``smtp_DATA`` and reads the connection's
        ``StreamReader``, ``self._reader`` (set by asyncio's ``StreamReaderProtocol``, which aiosmtpd's SMTP
        is): the second private name used here, beside ``_getaddr``. ``tests/integration/test_smtp_answers.py``
        and ``test_smtp_limits.py`` pin its answers (dot-stuffing, lines too long, size, budget)."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        envelope = self.envelope
        assert envelope is not None
        if not envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        gate = self._gate
        # A declared SIZE= is reserved whole before 354, so the budget goes to whole messages rather than to
        # many halves (senders without SIZE= reserve as their message arrives).
        declared = _declared_size(envelope.mail_options)
        if gate.spent() or not gate.reserve(declared):
            await self.push(_reply(InsufficientStorage()))
            return
        held = declared
        reader: asyncio.StreamReader = self._reader
        size_limit = self.data_size_limit or 0
        line_limit = self.line_length_limit
        lines: list[bytes] = []
        buffered = size = 0
        spool: tempfile.SpooledTemporaryFile[bytes] | None = None
        refusal: GatewayError | None = None
        in_long_line = False
        try:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            while True:
                try:
                    line = await reader.readuntil(b"\r\n")
                except asyncio.LimitOverrunError as error:
                    # Longer than the reader's limit (line_length_limit): read on, answer once DATA is over.
                    await reader.read(error.consumed)
                    in_long_line = True
                    refusal = refusal or LineTooLong()
                    continue
                if in_long_line:  # the end of a line too long
                    in_long_line = False
                    continue
                if line == b".\r\n":
                    break
                if refusal is not None:
                    continue  # read on without keeping anything
                if line[:1] == b".":  # RFC 5321 4.5.2: transparency
                    line = line[1:]
                size += len(line)
                if size_limit and size > size_limit:
                    refusal = MessageTooBig()
                elif len(line) > line_limit:
                    refusal = LineTooLong()
                else:
                    lines.append(line)
                    buffered += len(line)
                    if buffered < DATA_CHUNK:
                        continue
                    if size > held and not gate.reserve(size - held):
                        refusal = InsufficientStorage()
                    else:
                        held = max(held, size)
                        if spool is None:
                            spool = tempfile.SpooledTemporaryFile(max_size=self._limits.spool_threshold)
                        spool.write(b"".join(lines))
                if refusal is not None or buffered >= DATA_CHUNK:
                    lines.clear()
                    buffered = 0
            if refusal is None and size > held:
                if gate.reserve(size - held):
                    held = size
                else:
                    refusal = InsufficientStorage()
            if refusal is not None:
                lines.clear()
                self.envelope = Envelope()
                gate.free(held)
                held = 0
                await self.push(self._too_big if isinstance(refusal, MessageTooBig) else _reply(refusal))
                return
            if spool is None:
                raw = b"".join(lines)
            else:
                spool.write(b"".join(lines))
                spool.seek(0)
                raw = spool.read()
                spool.close()
                spool = None
            lines.clear()
            # One bytes object, no copy: aiosmtpd gives the handler both (content is decoded only with decode_data).
            envelope.original_content = envelope.content = raw
            del raw
            status = await self.event_handler.handle_DATA(self, self.session, envelope)
            self.envelope = Envelope()  # the message is let go before its answer: the bytes are not held any more
            gate.free(held)
            held = 0
            await self.push(status)
        finally:
            if spool is not None:
                spool.close()
            gate.free(held)

    async def push(self, status: AnyStr) -> None:
        if not isinstance(status, str):
            await super().push(status)
            return
        # aiosmtpd refuses over-size mail itself, before any handler hook: "552 Error: ..." at MAIL when SIZE=
        # is over data_size_limit. It has no public way to word those replies, so a 552 without an enhanced
        # status code (RFC 3463) is sent as ours: 5.3.4 and the limit. Every 552 is a size refusal (RFC 5321:
        # storage allocation exceeded); the handler's carry 5.3.4.
        if status[:4] == "552 " and status[4:6] != "5.":
            status = self._too_big
        elif status == "500 Command line too long":
            status = "500 5.5.2 Command line too long"
        elif _UNSAFE_REPLY.search(status):  # aiosmtpd quotes some arguments back ('command "X" not recognized')
            status = "\r\n".join(printable(part) for part in status.split("\r\n"))
        self._last = status
        # 354 and the DATA answer are counted once DATA is over (smtp_DATA); the lines before the last of a
        # multi-line reply (EHLO's) are not replies of their own.
        if self._in_data or status[3:4] == "-":
            await super().push(status)
            return
        if status[:1] == "5":
            failures = self._refusal()
            if failures > self._limits.max_failures:
                if failures > 2 * self._limits.max_failures:
                    await super().push(status)
                    self._end(TooManyFailures())
                    return
                await asyncio.sleep(self._limits.failure_delay)
        await super().push(status)
        self._commands += 1
        if self._commands > self._limits.max_commands_per_message:
            self._end(TooManyCommands())

    def _count(self, status: str) -> None:
        """Count a command answered inside DATA (the DATA command itself, refused)."""
        self._commands += 1
        if status[:1] == "5" and self._refusal() > 2 * self._limits.max_failures:
            self._end(TooManyFailures())
        elif self._commands > self._limits.max_commands_per_message:
            self._end(TooManyCommands())

    def _refusal(self) -> float:
        """Count a refused command: against the peer's address (whose score a new session keeps), or, when the
        server has no per-address cap (one address is many clients: a relay in front), in this session only;
        the count that decides."""
        if not self._gate.per_peer:
            self._failures += 1
            return self._failures
        return self._gate.failures.refused(self._gate.open.get(self), self.loop.time())

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


def _declared_size(mail_options: list[str]) -> int:
    """The ``SIZE=`` the sender declared at MAIL (aiosmtpd checked it is digits), or 0."""
    for option in mail_options:
        if option.startswith("SIZE="):
            return int(option[5:])
    return 0


def _reply(error: GatewayError) -> str:
    line = smtp_reply(error)
    assert line is not None, f"{type(error).__name__} has no SMTP reply"
    return line


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
