"""Senders: hand a stored email to its destination. One Protocol, a relay and the local outbox."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote, urlsplit

from gateway.errors import ConfigError
from outbound.relay import RelaySender

__all__ = ["LocalOutbox", "MemorySender", "RelaySender", "Sender", "sender_from_url"]


class Sender(Protocol):
    """Delivers one email; raises TemporaryDeliveryFailure or PermanentDeliveryFailure."""

    def send(self, *, mail_from: str, to: Sequence[str], raw: bytes) -> str | None:
        """Deliver ``raw`` to ``to``; the receiving server's answer, if there is one."""
        ...


class LocalOutbox:
    """Embedded mode: emails stay in the store's outbox, where they can be listed and read."""

    def send(self, *, mail_from: str, to: Sequence[str], raw: bytes) -> str | None:
        """Nothing to do: the outbox row already holds the full email."""
        return "kept in the local outbox (no relay configured)"


@dataclass
class MemorySender:
    """Keeps every email in a list: a fake for tests."""

    sent: list[tuple[str, tuple[str, ...], bytes]] = field(default_factory=list)

    def send(self, *, mail_from: str, to: Sequence[str], raw: bytes) -> str | None:
        """Remember the email."""
        self.sent.append((mail_from, tuple(to), raw))
        return None


def sender_from_url(url: str | None, *, tls_context: ssl.SSLContext | None = None) -> Sender:
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
        require_tls=not implicit and bool(parts.username),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls_context=tls_context,
    )
