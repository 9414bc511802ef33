"""One error tree for the gateway.

    GatewayError
    ├── ConfigError          a setting is missing or malformed
    │   └── CannotListen         (a port to listen on is in use or not allowed)
    ├── TokenError           a reply address or token is not ours
    │   ├── MalformedToken
    │   └── ForgedToken
    ├── StoreError           the store cannot do what was asked
    │   └── StoreUnavailable
    ├── EventError           a help-desk event cannot be applied
    │   ├── UnknownTicket
    │   ├── TicketConflict
    │   ├── EventIdReused
    │   ├── DuplicateReply
    │   └── InvalidTransition
    │       ├── UnknownState
    │       └── StateMismatch
    ├── InboundError         an inbound message cannot be accepted or cannot land
    │   ├── UnknownRecipient     (RCPT: not a valid reply address)
    │   ├── MessageTooBig
    │   ├── TooManyConnections
    │   │   └── TooManyPeerConnections   (one peer address holds its share)
    │   ├── SessionLimit         (a session used up its time, commands or refusals: 421, closed)
    │   │   ├── SessionTooLong
    │   │   ├── TooManyCommands
    │   │   └── TooManyFailures
    │   ├── TooManyRecipients
    │   ├── InsufficientStorage  (the bytes-in-flight budget is spent)
    │   ├── AddressTooLong
    │   │   ├── SenderTooLong
    │   │   └── RecipientTooLong
    │   ├── LineTooLong
    │   ├── ShuttingDown
    │   ├── MalformedMessage
    │   ├── Unthreaded
    │   ├── AutoReply
    │   ├── Bounce
    │   ├── SenderNotCustomer
    │   ├── DmarcFailed
    │   └── NoReplyText
    ├── DeliveryError        an outbound email could not be handed over
    │   ├── TemporaryDeliveryFailure
    │   └── PermanentDeliveryFailure
    └── MessengerError       a Messenger request cannot be answered
        ├── BadMessengerToken
        ├── NotYourTicket
        └── UnknownEntry
"""

from __future__ import annotations

__all__ = [
    "AddressTooLong",
    "AutoReply",
    "BadMessengerToken",
    "Bounce",
    "CannotListen",
    "ConfigError",
    "DeliveryError",
    "DmarcFailed",
    "DuplicateReply",
    "EventError",
    "EventIdReused",
    "ForgedToken",
    "GatewayError",
    "InboundError",
    "InsufficientStorage",
    "InvalidTransition",
    "LineTooLong",
    "MalformedMessage",
    "MalformedToken",
    "MessageTooBig",
    "MessengerError",
    "NoReplyText",
    "NotYourTicket",
    "PermanentDeliveryFailure",
    "RecipientTooLong",
    "SenderNotCustomer",
    "SenderTooLong",
    "SessionLimit",
    "SessionTooLong",
    "ShuttingDown",
    "StateMismatch",
    "StoreError",
    "StoreUnavailable",
    "TemporaryDeliveryFailure",
    "TicketConflict",
    "TokenError",
    "TooManyCommands",
    "TooManyConnections",
    "TooManyFailures",
    "TooManyPeerConnections",
    "TooManyRecipients",
    "UnknownEntry",
    "UnknownRecipient",
    "UnknownState",
    "UnknownTicket",
    "Unthreaded",
]


class GatewayError(Exception):
    """Base class for every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """Raised when a setting is missing or malformed; the message names the variable."""


class CannotListen(ConfigError):
    """Raised when a port the gateway should listen on is in use or not allowed; names the variable and port."""


class TokenError(GatewayError):
    """Raised when a reply address does not carry a token of ours."""


class MalformedToken(TokenError):
    """Raised when a reply address or token is not of the form we issue."""


class ForgedToken(TokenError):
    """Raised when a well-formed token's signature does not verify under any known key."""


class StoreError(GatewayError):
    """Raised when the store cannot do what was asked."""


class StoreUnavailable(StoreError):
    """Raised when the database cannot be reached or cannot commit."""


class EventError(GatewayError):
    """Raised when a help-desk event cannot be applied; nothing of it is applied."""


class UnknownTicket(EventError):
    """Raised when an event or message names a ticket the gateway does not know."""


class TicketConflict(EventError):
    """Raised when ``ticket.created`` names a ticket id that already exists under another event."""


class EventIdReused(EventError):
    """Raised when an event id seen before comes again with a different body (a repeat must be the same event)."""


class DuplicateReply(EventError):
    """Raised when a teammate reply id has been seen before on another event."""


class InvalidTransition(EventError):
    """Raised when a state change names an impossible state or transition."""


class UnknownState(InvalidTransition):
    """Raised when a state change names a state the help desk does not have."""


class StateMismatch(InvalidTransition):
    """Raised when a state change's ``from`` is not the state the gateway has for the ticket."""


class InboundError(GatewayError):
    """Raised when an inbound message cannot be processed."""


class UnknownRecipient(InboundError):
    """Raised when a recipient is not a valid reply address; the message says why, for a human."""


class MessageTooBig(InboundError):
    """Raised when an inbound message is larger than ``GATEWAY_MAX_MESSAGE_BYTES``."""


class TooManyConnections(InboundError):
    """Raised when a new SMTP connection would exceed ``GATEWAY_MAX_CONNECTIONS``."""


class TooManyPeerConnections(TooManyConnections):
    """Raised when a new SMTP connection would exceed ``GATEWAY_SMTP_MAX_CONNECTIONS_PER_PEER`` for its address."""


class SessionLimit(InboundError):
    """Raised when an SMTP session used up what one session may take; it is answered 421 and closed."""


class SessionTooLong(SessionLimit):
    """Raised when an SMTP session outlives ``GATEWAY_SMTP_MAX_SESSION_SECONDS``."""


class TooManyCommands(SessionLimit):
    """Raised when a session sends more than ``GATEWAY_SMTP_MAX_COMMANDS_PER_MESSAGE`` commands without a message."""


class TooManyFailures(SessionLimit):
    """Raised when a session keeps failing: twice ``GATEWAY_SMTP_MAX_FAILURES`` refused commands."""


class TooManyRecipients(InboundError):
    """Raised when a message would get more than ``GATEWAY_SMTP_MAX_RECIPIENTS`` recipients."""


class InsufficientStorage(InboundError):
    """Raised when a message would take the bytes in flight over ``GATEWAY_SMTP_MAX_BYTES_IN_FLIGHT``."""


class AddressTooLong(InboundError):
    """Raised when an envelope address is longer than the store keeps (320 characters)."""


class SenderTooLong(AddressTooLong):
    """Raised when the ``MAIL FROM`` address is too long."""


class RecipientTooLong(AddressTooLong):
    """Raised when a ``RCPT TO`` address is too long."""


class LineTooLong(InboundError):
    """Raised when a line of a message is longer than RFC 5321 allows (1000 octets with CRLF)."""


class ShuttingDown(InboundError):
    """Raised when a connection or transaction starts while the SMTP server is stopping."""


class MalformedMessage(InboundError):
    """Raised when an inbound message is not parseable MIME."""


class Unthreaded(InboundError):
    """Raised when neither a reply token nor In-Reply-To/References names one of our tickets."""


class AutoReply(InboundError):
    """Raised when an inbound message was written by a machine (out of office, list, RFC 3834)."""


class Bounce(InboundError):
    """Raised when an inbound message is a bounce or delivery status notification."""


class SenderNotCustomer(InboundError):
    """Raised when the ``From`` of a reply is not the ticket's customer (the message is quarantined)."""


class DmarcFailed(InboundError):
    """Raised when the trusted upstream server recorded ``dmarc=fail`` for a reply (quarantined)."""


class NoReplyText(InboundError):
    """Raised when a reply holds no new text once quoted history and signature are removed."""


class DeliveryError(GatewayError):
    """Raised when an outbound email could not be handed to the relay."""


class TemporaryDeliveryFailure(DeliveryError):
    """Raised on a 4xx answer or a dropped connection: the email is retried later."""


class PermanentDeliveryFailure(DeliveryError):
    """Raised on a 5xx answer: the email is not retried. ``code`` is the SMTP reply code."""

    def __init__(self, message: str, *, code: int = 550, enhanced: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.enhanced = enhanced


class MessengerError(GatewayError):
    """Raised when a Messenger request (thread, receipt, stream) cannot be answered."""


class BadMessengerToken(MessengerError):
    """Raised when a Messenger key is malformed, forged or expired."""


class NotYourTicket(MessengerError):
    """Raised when a seen receipt names a customer the ticket does not belong to."""


class UnknownEntry(MessengerError):
    """Raised when a seen receipt or a page cursor names an entry the ticket does not have."""
