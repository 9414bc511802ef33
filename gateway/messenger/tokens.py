"""Messenger keys (pure): a token the help desk issues so a Messenger may act for one customer.

    w2cm.<base64url JSON {"c": customer id, "exp": unix seconds}>.<base64url HMAC-SHA256, 128 bits>

The signature covers everything before it, under ``GATEWAY_MESSENGER_SECRET``. A token names one
customer and expires; it can read only that customer's tickets (see docs/messenger.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.errors import BadMessengerToken

__all__ = ["PREFIX", "Grant", "issue", "looks_like_token", "verify"]

#: Every Messenger key starts with this, so it is never confused with a help-desk key.
PREFIX = "w2cm."
#: Bytes of the HMAC kept in the token.
SIGNATURE_BYTES = 16
#: Longest token accepted (anything longer is refused before decoding).
MAX_TOKEN_LENGTH = 1024


@dataclass(frozen=True)
class Grant:
    """What a valid Messenger key allows: acting for ``customer_id`` until ``expires_at``."""

    customer_id: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, body: str) -> str:
    return _b64(hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest()[:SIGNATURE_BYTES])


def looks_like_token(value: str) -> bool:
    """Whether ``value`` has the shape of a Messenger key (not whether it is valid)."""
    return value.startswith(PREFIX)


def issue(customer_id: str, *, expires_at: datetime, secret: bytes) -> str:
    """A Messenger key for ``customer_id`` valid until ``expires_at``."""
    payload = json.dumps({"c": customer_id, "exp": int(expires_at.timestamp())}, separators=(",", ":"))
    body = PREFIX + _b64(payload.encode())
    return f"{body}.{_sign(secret, body)}"


def verify(token: str, *, secrets: Sequence[bytes], now: datetime) -> Grant:
    """The grant ``token`` carries; raise :class:`BadMessengerToken` if malformed, forged or expired."""
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii() or not looks_like_token(token):
        raise BadMessengerToken("not a Messenger key")
    body, _, signature = token.rpartition(".")
    if not any([hmac.compare_digest(signature, _sign(secret, body)) for secret in secrets]):
        raise BadMessengerToken("Messenger key signature does not verify")
    try:
        claims = json.loads(_unb64(body[len(PREFIX):]))
        customer_id, expires = str(claims["c"]), int(claims["exp"])
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise BadMessengerToken(f"malformed Messenger key: {exc}") from None
    expires_at = datetime.fromtimestamp(expires, UTC)
    if expires_at <= now:
        raise BadMessengerToken(f"Messenger key expired at {expires_at.isoformat()}")
    return Grant(customer_id=customer_id, expires_at=expires_at)
