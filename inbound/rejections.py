"""The one table: each inbound failure -> what the sender is told (an SMTP reply, an HTTP status), or silence.

Failures found at the SMTP edge (before ``250``) get a reply; failures found by the pipeline
(after the message was committed and ``250`` given) are recorded on the stored message and
the sender is told nothing: answering them would create mail loops and backscatter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.errors import (
    AddressTooLong,
    AutoReply,
    Bounce,
    DmarcFailed,
    GatewayError,
    InsufficientStorage,
    LineTooLong,
    MalformedMessage,
    MessageTooBig,
    NoReplyText,
    RecipientTooLong,
    SenderNotCustomer,
    SenderTooLong,
    SessionLimit,
    SessionTooLong,
    ShuttingDown,
    StoreUnavailable,
    TooManyCommands,
    TooManyConnections,
    TooManyFailures,
    TooManyPeerConnections,
    TooManyRecipients,
    UnknownRecipient,
    Unthreaded,
)

__all__ = ["REJECTIONS", "Rejection", "http_status", "printable", "smtp_reply", "stored_status"]


@dataclass(frozen=True)
class Rejection:
    """What one failure answers: an SMTP reply template (``{reason}`` is the error's text) and an
    HTTP status for ``POST /v1/inbound``; ``None`` for both means silence (recorded, never answered)."""

    smtp: str | None
    http: int | None
    #: Where the stored message ends (``inbound_messages.status``); None: never stored.
    status: str | None = None


REJECTIONS: Mapping[type[GatewayError], Rejection] = {
    UnknownRecipient: Rejection("550 5.1.1 {reason}", 422),
    MessageTooBig: Rejection("552 5.3.4 {reason}", 413),
    StoreUnavailable: Rejection("451 4.3.0 Cannot store the message right now; please try again later", 503),
    TooManyConnections: Rejection("421 4.7.0 Too many connections; please try again later", None),
    TooManyPeerConnections: Rejection("421 4.7.0 Too many connections from your address; please try again later", None),
    SessionLimit: Rejection("421 4.7.0 Session limit reached; please reconnect", None),
    SessionTooLong: Rejection("421 4.7.0 Session too long; please reconnect", None),
    TooManyCommands: Rejection("421 4.7.0 Too many commands without a message; please reconnect", None),
    TooManyFailures: Rejection("421 4.7.0 Too many errors; please try again later", None),
    TooManyRecipients: Rejection("452 4.5.3 Too many recipients; send the others in another transaction", None),
    InsufficientStorage: Rejection("452 4.3.1 Insufficient system storage; please try again later", 503),
    SenderTooLong: Rejection("501 5.1.7 {reason}", 422),
    RecipientTooLong: Rejection("501 5.1.3 {reason}", 422),
    AddressTooLong: Rejection("501 5.1.3 {reason}", 422),
    LineTooLong: Rejection("500 5.5.2 Line too long (see RFC 5321 4.5.3.1.6)", None),
    ShuttingDown: Rejection("421 4.3.2 Service shutting down; please try again later", 503),
    # After 250: recorded on the stored message, never answered.
    MalformedMessage: Rejection(None, None, "failed"),
    Unthreaded: Rejection(None, None, "unthreaded"),
    AutoReply: Rejection(None, None, "auto_reply"),
    Bounce: Rejection(None, None, "bounce"),
    SenderNotCustomer: Rejection(None, None, "quarantined"),
    DmarcFailed: Rejection(None, None, "quarantined"),
    NoReplyText: Rejection(None, None, "failed"),
}


def _rejection(error: GatewayError) -> Rejection:
    for kind in type(error).__mro__:
        if kind in REJECTIONS:
            return REJECTIONS[kind]
    raise KeyError(f"no rejection for {type(error).__name__}")


# What may not be quoted back in a reply line: C0 controls (NUL, a bare CR or LF would end or split the line), DEL,
# and lone surrogates (undecodable bytes of an SMTPUTF8 argument, which cannot be encoded to be sent).
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` safe to quote in a reply line: each control character or lone surrogate as ``\\xNN``/``\\uNNNN``."""
    return _UNSAFE.sub(lambda m: ascii(m.group())[1:-1], text)


def smtp_reply(error: GatewayError) -> str | None:
    """The SMTP reply line for ``error``, or None for silence; what the error quotes is made :func:`printable`."""
    template = _rejection(error).smtp
    return None if template is None else template.format(reason=printable(str(error) or type(error).__name__))


def http_status(error: GatewayError) -> int | None:
    """The HTTP status ``POST /v1/inbound`` answers for ``error``, or None (accepted: 202)."""
    return _rejection(error).http


def stored_status(error: GatewayError) -> str:
    """The status a stored message ends in when the pipeline meets ``error``."""
    status = _rejection(error).status
    if status is None:
        raise KeyError(f"{type(error).__name__} is refused before anything is stored")
    return status
