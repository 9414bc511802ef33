"""The SMTP relay client: one reused connection per worker thread, answers mapped to failures."""

from __future__ import annotations

import functools
import smtplib
import ssl
import threading
from collections.abc import Sequence

from gateway.addresses import is_plain_address
from gateway.errors import PermanentDeliveryFailure, TemporaryDeliveryFailure

__all__ = ["RELAY_TIMEOUT", "RelaySender", "failure_for", "smtp_path", "with_end_of_data"]

#: Seconds to wait for the relay to connect or to answer one command.
RELAY_TIMEOUT = 30.0


class _Dropped(Exception):
    """The connection was gone before the relay accepted anything of this email."""


@functools.lru_cache(maxsize=1024)
def smtp_path(address: str) -> str:
    """``<address>`` for ``MAIL FROM:`` or ``RCPT TO:``; the stdlib's quoting (a full address parse,
    a sizeable share of a send's CPU) only for what is not a plain ``local@domain``."""
    return f"<{address}>" if is_plain_address(address) else smtplib.quoteaddr(address)


def with_end_of_data(raw: bytes) -> bytes:
    """``raw`` as sent after ``DATA``: every line that starts with a dot gets another one (RFC 5321
    4.5.2; what ``smtplib`` does with a regex, as two byte replaces), then the ``CRLF.CRLF`` end."""
    stuffed = raw.replace(b"\n.", b"\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + (b".\r\n" if stuffed.endswith(b"\r\n") else b"\r\n.\r\n")


def failure_for(code: int, text: bytes | str) -> TemporaryDeliveryFailure | PermanentDeliveryFailure:
    """The failure an SMTP answer means: 4xx temporary, 5xx permanent (with its enhanced code)."""
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    if code < 500:
        return TemporaryDeliveryFailure(f"{code} {message}")
    enhanced = message.split(" ", 1)[0] if message[:2] == "5." else ""
    return PermanentDeliveryFailure(f"{code} {message}", code=code, enhanced=enhanced)


class RelaySender:
    """Sends through an SMTP relay, keeping one connection per thread open between emails.

    A connection the relay closed while idle is noticed at ``MAIL FROM`` and replaced once;
    nothing of the email had been accepted then, so that cannot send it twice.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        implicit_tls: bool = False,
        require_tls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = RELAY_TIMEOUT,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._host, self._port = host, port
        self._implicit_tls, self._require_tls = implicit_tls, require_tls
        self._username, self._password = username, password
        self._timeout = timeout
        self._tls = tls_context or ssl.create_default_context()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[smtplib.SMTP] = set()

    @property
    def where(self) -> str:
        """``host:port`` of the relay."""
        return f"{self._host}:{self._port}"

    def _connect(self) -> smtplib.SMTP:
        client: smtplib.SMTP | None = None
        try:
            if self._implicit_tls:
                client = smtplib.SMTP_SSL(self._host, self._port, timeout=self._timeout, context=self._tls)
            else:
                client = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
            client.ehlo()
            if not self._implicit_tls and client.has_extn("starttls"):
                client.starttls(context=self._tls)
                client.ehlo()
            elif not self._implicit_tls and self._require_tls:
                raise smtplib.SMTPNotSupportedError("the relay does not offer STARTTLS; the password stays here")
            if self._username:
                client.login(self._username, self._password or "")
        except (smtplib.SMTPException, OSError) as exc:
            if client is not None:
                client.close()
            raise TemporaryDeliveryFailure(f"relay {self.where} unreachable: {exc}") from None
        with self._lock:
            self._open.add(client)
        return client

    def check(self) -> None:
        """Connect as a send would (EHLO, STARTTLS and AUTH as configured), then QUIT, sending nothing;
        raises :class:`TemporaryDeliveryFailure` saying what failed."""
        client = self._connect()
        with self._lock:
            self._open.discard(client)
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()

    def _client(self) -> tuple[smtplib.SMTP, bool]:
        """This thread's connection and whether it was reused (True) or just opened."""
        client: smtplib.SMTP | None = getattr(self._local, "client", None)
        if client is not None:
            return client, True
        client = self._connect()
        self._local.client = client
        return client, False

    def _drop(self) -> None:
        client: smtplib.SMTP | None = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            with self._lock:
                self._open.discard(client)
            try:
                client.close()
            except OSError:
                pass

    def send(self, *, mail_from: str, to: Sequence[str], raw: bytes) -> str:
        """Send ``raw``; the relay's answer (``250 ... queued as ...``). Raise TemporaryDeliveryFailure
        or PermanentDeliveryFailure on a refusal."""
        for _ in range(2):
            client, reused = self._client()
            try:
                return self._transaction(client, mail_from, to, raw)
            except _Dropped as exc:
                self._drop()
                if not reused:
                    raise TemporaryDeliveryFailure(f"relay {self.where} closed the connection: {exc}") from None
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                self._drop()
                raise TemporaryDeliveryFailure(f"relay {self.where} dropped the connection: {exc}") from None
        raise TemporaryDeliveryFailure(f"relay {self.where} keeps closing the connection")

    def _transaction(self, client: smtplib.SMTP, mail_from: str, to: Sequence[str], raw: bytes) -> str:
        reply: bytes | str
        try:
            code, reply = client.docmd("MAIL", "FROM:" + smtp_path(mail_from))
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _Dropped(str(exc) or type(exc).__name__) from None
        if code == 250:
            for recipient in to:
                code, reply = client.docmd("RCPT", "TO:" + smtp_path(recipient))
                if code not in (250, 251):
                    break
            else:
                code, reply = client.docmd("DATA")
                if code == 354:  # anything else refuses the message before it is sent
                    client.send(with_end_of_data(raw))
                    code, reply = client.getreply()
        if code == 250:
            text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
            return f"{code} {' '.join(text.split())}"[:300]
        if code == 421:  # the relay is closing this connection
            self._drop()
        else:
            try:
                client.rset()
            except (smtplib.SMTPException, OSError):
                self._drop()
        raise failure_for(code, reply)

    def close(self) -> None:
        """Close every connection this sender has open (all threads)."""
        with self._lock:
            clients, self._open = list(self._open), set()
        for client in clients:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()
