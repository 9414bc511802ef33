"""Senders: hand a stored email to its destination. One Protocol, a relay and the local outbox."""

from __future__ import annotations

import smtplib
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote, urlsplit

from gateway.errors import ConfigError, PermanentDeliveryFailure, TemporaryDeliveryFailure

__all__ = ["LocalOutbox", "MemorySender", "RelaySender", "Sender", "sender_from_url"]

#: Seconds to wait for the relay to connect or answer.
RELAY_TIMEOUT = 30.0


class Sender(Protocol):
    """Delivers one email; raises TemporaryDeliveryFailure or PermanentDeliveryFailure."""

    #: Whether a delivery leaves the gateway (False: the local outbox keeps it).
    relays: bool

    def send(self, *, mail_from: str, to: Sequence[str], raw: bytes) -> None:
        """Deliver ``raw`` to ``to``."""
        ...


class LocalOutbox:
    """Embedded mode: emails stay in the store's outbox, where they can be listed and read."""

    relays = False

    def send(self, *, mail_from: str, to: Sequence[str], raw: bytes) -> None:
        """Nothing to do: the outbox row already holds the full email."""


@dataclass
class MemorySender:
    """Keeps every email in a list: a fake for tests."""

    relays: bool = True
    sent: list[tuple[str, tuple[str, ...], bytes]] = field(default_factory=list)

    def send(self, *, mail_from: str, to: Sequence[str], raw: bytes) -> None:
        """Remember the email."""
        self.sent.append((mail_from, tuple(to), raw))


class RelaySender:
    """Sends through an SMTP relay, reusing one connection per thread."""

    relays = True

    def __init__(
        self,
        *,
        host: str,
        port: int,
        implicit_tls: bool = False,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = RELAY_TIMEOUT,
    ) -> None:
        self._host, self._port = host, port
        self._implicit_tls, self._starttls = implicit_tls, starttls
        self._username, self._password = username, password
        self._timeout = timeout
        self._local = threading.local()

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if self._implicit_tls:
            client = smtplib.SMTP_SSL(self._host, self._port, timeout=self._timeout, context=context)
        else:
            client = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
            client.ehlo()
            if client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
            elif self._starttls:
                client.close()
                raise TemporaryDeliveryFailure(f"relay {self._host}:{self._port} does not offer STARTTLS")
        if self._username:
            client.login(self._username, self._password or "")
        return client

    def _client(self) -> smtplib.SMTP:
        client: smtplib.SMTP | None = getattr(self._local, "client", None)
        if client is not None:
            try:
                if client.noop()[0] == 250:
                    return client
            except (smtplib.SMTPException, OSError):
                pass
            self._drop()
        client = self._connect()
        self._local.client = client
        return client

    def _drop(self) -> None:
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            try:
                client.close()
            except OSError:
                pass

    def send(self, *, mail_from: str, to: Sequence[str], raw: bytes) -> None:
        """Send ``raw``; map the relay's answer onto a temporary or permanent failure."""
        try:
            refused = self._client().sendmail(mail_from, list(to), raw)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise _failure(code, text) from None
        except smtplib.SMTPResponseException as exc:
            if isinstance(exc, smtplib.SMTPServerDisconnected) or exc.smtp_code >= 500:
                self._drop()
            raise _failure(exc.smtp_code, exc.smtp_error) from None
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise TemporaryDeliveryFailure(f"relay {self._host}:{self._port} unreachable: {exc}") from None
        if refused:
            code, text = next(iter(refused.values()))
            raise _failure(code, text)


def _failure(code: int, text: bytes | str) -> TemporaryDeliveryFailure | PermanentDeliveryFailure:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    if 400 <= code < 500:
        return TemporaryDeliveryFailure(f"{code} {message}")
    enhanced = message.split(" ", 1)[0] if message[:2] in ("5.", "4.") else ""
    return PermanentDeliveryFailure(f"{code} {message}", code=code, enhanced=enhanced)


def sender_from_url(url: str | None) -> Sender:
    """``None``: the local outbox; ``smtp://`` uses STARTTLS when offered (required with a
    user name, so a password never crosses in clear); ``smtps://`` uses implicit TLS."""
    if url is None:
        return LocalOutbox()
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError(f"GATEWAY_SMTP_RELAY_URL: expected smtp:// or smtps://, got {url!r}")
    implicit = parts.scheme == "smtps"
    return RelaySender(
        host=parts.hostname,
        port=parts.port or (465 if implicit else 25),
        implicit_tls=implicit,
        starttls=not implicit and bool(parts.username),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )
