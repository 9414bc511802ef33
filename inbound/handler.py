"""The inbound SMTP edge (aiosmtpd): hooks that return reply lines, no business logic.

RCPT asks the recipient check (in a thread: it may read the store); DATA hands the raw
message to the group commit and answers ``250`` only once it is committed, ``451`` if it
could not be. The event loop never waits on the store. Reply texts come from the one table
in :mod:`inbound.rejections`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.errors import (
    GatewayError,
    MessageTooBig,
    RecipientTooLong,
    SenderTooLong,
    ShuttingDown,
    StoreUnavailable,
    TooManyRecipients,
    UnknownRecipient,
)
from gateway.logs import event
from gateway.metrics import SMTP_ACCEPTED_BYTES, SMTP_REPLIES, child, reply_class
from gateway.models import RawMessage
from inbound.rejections import smtp_reply

__all__ = ["MAX_ADDRESS_CHARS", "InboundHandler", "accepted_reply"]

log = logging.getLogger(__name__)

#: Longest envelope address accepted (the store's address columns hold 320 characters: RFC 3696's 64 + 1 + 255).
MAX_ADDRESS_CHARS = 320
#: Recipients of one message, unless the server is told otherwise (RFC 5321 4.5.3.1.8: at least 100).
DEFAULT_MAX_RECIPIENTS = 100


def accepted_reply(pk: int) -> str:
    """The ``250`` line for a committed message; it names the gateway's id for it."""
    return f"250 2.0.0 OK: stored as inbound message {pk}"


def _reply(error: GatewayError) -> str:
    line = smtp_reply(error)
    assert line is not None, f"{type(error).__name__} has no SMTP reply"
    return line


class InboundHandler:
    """aiosmtpd handler: RCPT asks ``refusal``; DATA awaits ``commit`` and answers once the message is durable."""

    def __init__(
        self,
        *,
        refusal: Callable[[str], UnknownRecipient | None],
        commit: Callable[[RawMessage], Awaitable[int]],
        max_message_bytes: int,
        lmtp: bool = False,
        stopping: Callable[[], bool] = lambda: False,
        cheap_refusal: Callable[[str], bool] = lambda address: False,
        max_recipients: int = DEFAULT_MAX_RECIPIENTS,
    ) -> None:
        self._refusal = refusal
        self._commit = commit
        self._max_message_bytes = max_message_bytes
        self._lmtp = lmtp
        self._stopping = stopping
        self._cheap = cheap_refusal
        self._max_recipients = max_recipients
        self._sender_too_long = _reply(SenderTooLong(_too_long("Sender")))
        self._recipient_too_long = _reply(RecipientTooLong(_too_long("Recipient")))
        self._too_many_recipients = _reply(TooManyRecipients())

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        if self._stopping():
            # Close once the 421 below is written: no new transaction starts while stopping.
            asyncio.get_running_loop().call_soon(server.transport.close)
            return _reply(ShuttingDown())
        if len(address) > MAX_ADDRESS_CHARS:  # refused here, not by the store's column later (and its commit group)
            return self._sender_too_long
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self._max_recipients:
            child(SMTP_REPLIES, "4xx", "TooManyRecipients").inc()
            return self._too_many_recipients
        if len(address) > MAX_ADDRESS_CHARS:
            return self._recipient_too_long
        loop = asyncio.get_running_loop()
        try:
            if self._cheap(address):  # no store read needed: answer on the loop, no thread hop
                refusal = self._refusal(address)
            else:
                refusal = await loop.run_in_executor(None, self._refusal, address)
        except Exception:
            log.warning("recipient check failed for %s", address, exc_info=True)
            return "451 4.3.0 Cannot check the recipient right now; please try again later"
        if refusal is not None:
            line = _reply(refusal)
            child(SMTP_REPLIES, reply_class(line), type(refusal).__name__).inc()
            event(log, "smtp.refused", code=line[:9], reason=type(refusal).__name__, rcpt=address,
                  peer=_peer(session))
            return line
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw: bytes = envelope.original_content
        if len(raw) > self._max_message_bytes:
            child(SMTP_REPLIES, "5xx", "MessageTooBig").inc()
            event(log, "smtp.refused", code="552 5.3.4", reason="MessageTooBig", size=len(raw), peer=_peer(session))
            return self._answer(envelope, _reply(MessageTooBig(_too_big(self._max_message_bytes))))
        message = RawMessage(envelope.mail_from or "", tuple(envelope.rcpt_tos), raw)
        try:
            pk = await self._commit(message)
        except Exception as exc:  # noqa: BLE001 - whatever the store raised, the sender retries
            child(SMTP_REPLIES, "4xx", "StoreUnavailable").inc()
            event(log, "smtp.refused", level=logging.WARNING, code="451 4.3.0", reason="StoreUnavailable",
                  error=f"{type(exc).__name__}: {exc}", peer=_peer(session))
            return self._answer(envelope, _reply(StoreUnavailable()))
        child(SMTP_REPLIES, "2xx", "accepted").inc()
        SMTP_ACCEPTED_BYTES.inc(len(raw))
        return self._answer(envelope, accepted_reply(pk))

    def _answer(self, envelope: Any, line: str) -> str:
        """LMTP answers DATA once per accepted recipient; SMTP once."""
        if not self._lmtp:
            return line
        return "\r\n".join([line] * max(1, len(envelope.rcpt_tos)))


def _peer(session: Any) -> str | None:
    peer = getattr(session, "peer", None)
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else None


def _too_long(which: str) -> str:
    return f"{which} address too long: at most {MAX_ADDRESS_CHARS} characters"


def _too_big(limit: int) -> str:
    return f"Message too big: this server accepts at most {limit} bytes"
