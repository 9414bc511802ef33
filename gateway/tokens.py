"""Reply tokens: ``reply+<token>@<reply domain>`` addresses that only the gateway can mint, and
bounce tokens: ``bounces+<token>@<reply domain>``, the envelope sender (VERP return path) of one
outbound email, so that its bounces come back to the gateway and name that email.

A token is lower-case base32 (no padding) of 17 bytes::

    key id (1) | ticket key (6, big-endian) | HMAC-SHA256(secret, key id | ticket key | recipient)[:10]

The recipient (the customer's address, case-folded) is bound by the MAC but not carried, so
a token copied to another address does not verify. A bounce token has the same shape with the
outbox email's key in place of the ticket's, its MAC over ``key id | email key | NUL "bounce"``
(no reply token's MAC input ends that way, so neither kind can pass for the other). Keys rotate
for both alike. Pure: no I/O, no clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.errors import ForgedToken, MalformedToken

__all__ = [
    "BOUNCE_PREFIX",
    "LOCAL_PREFIX",
    "BounceToken",
    "Keyring",
    "ReplyToken",
    "make_bounce_address",
    "make_reply_address",
    "make_token",
    "parse_bounce_address",
    "parse_reply_address",
    "parse_token",
    "verify_bounce_token",
    "verify_token",
]

#: Local part prefix of every reply address.
LOCAL_PREFIX = "reply+"
#: Local part prefix of every bounce (return-path) address.
BOUNCE_PREFIX = "bounces+"
#: What ends the MAC input of a bounce token (a reply token's ends with an address).
_BOUNCE_PURPOSE = b"\x00bounce"
#: Bytes of the truncated HMAC-SHA256 (80 bits).
MAC_BYTES = 10
#: Bytes used for the ticket key (tickets up to 2**48).
TICKET_KEY_BYTES = 6
_TOKEN_BYTES = 1 + TICKET_KEY_BYTES + MAC_BYTES
#: Characters of a token: base32 of 17 bytes without padding.
TOKEN_LENGTH = 28
_B32_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")


@dataclass(frozen=True)
class ReplyToken:
    """What a token carries: the signing key's id, the ticket key and the truncated MAC."""

    key_id: int
    ticket_key: int
    mac: bytes


@dataclass(frozen=True)
class BounceToken:
    """What a bounce token carries: the signing key's id, the outbox email's key and the MAC."""

    key_id: int
    email_key: int
    mac: bytes


def _bounce_mac(secret: bytes, key_id: int, email_key: int) -> bytes:
    message = bytes([key_id]) + email_key.to_bytes(TICKET_KEY_BYTES, "big") + _BOUNCE_PURPOSE
    return hmac.new(secret, message, hashlib.sha256).digest()[:MAC_BYTES]


def _mac(secret: bytes, key_id: int, ticket_key: int, recipient: str) -> bytes:
    message = bytes([key_id]) + ticket_key.to_bytes(TICKET_KEY_BYTES, "big") + recipient.strip().casefold().encode()
    return hmac.new(secret, message, hashlib.sha256).digest()[:MAC_BYTES]


def make_token(ticket_key: int, recipient: str, *, key_id: int, secret: bytes) -> str:
    """Mint the token binding ``ticket_key`` and ``recipient`` under the key ``key_id``."""
    if not 0 <= ticket_key < 2 ** (8 * TICKET_KEY_BYTES):
        raise ValueError(f"ticket key out of range: {ticket_key!r}")
    if not 0 <= key_id <= 255:
        raise ValueError(f"key id out of range: {key_id!r}")
    raw = bytes([key_id]) + ticket_key.to_bytes(TICKET_KEY_BYTES, "big") + _mac(secret, key_id, ticket_key, recipient)
    return base64.b32encode(raw).decode().rstrip("=").lower()


def make_reply_address(ticket_key: int, recipient: str, *, key_id: int, secret: bytes, domain: str) -> str:
    """The reply address for ``ticket_key`` sent to ``recipient``: ``reply+<token>@<domain>``."""
    return f"{LOCAL_PREFIX}{make_token(ticket_key, recipient, key_id=key_id, secret=secret)}@{domain}"


def parse_token(token: str) -> ReplyToken:
    """Decode ``token`` (case-insensitively); raise :class:`MalformedToken` if it is not one of ours."""
    folded = token.lower()
    if len(folded) != TOKEN_LENGTH or not set(folded) <= _B32_ALPHABET:
        raise MalformedToken(f"invalid reply token: {token!r}")
    raw = base64.b32decode(folded.upper() + "=" * (-len(folded) % 8))
    # Reject spare trailing bits: only the canonical spelling of these bytes is a token.
    if base64.b32encode(raw).decode().rstrip("=").lower() != folded or len(raw) != _TOKEN_BYTES:
        raise MalformedToken(f"invalid reply token: {token!r}")
    return ReplyToken(
        key_id=raw[0],
        ticket_key=int.from_bytes(raw[1 : 1 + TICKET_KEY_BYTES], "big"),
        mac=raw[1 + TICKET_KEY_BYTES :],
    )


def parse_reply_address(address: str, *, domain: str) -> ReplyToken:
    """Decode the token of ``reply+<token>@<domain>``; raise :class:`MalformedToken` otherwise."""
    local, at, addr_domain = address.strip().strip("<>").rpartition("@")
    if not at or addr_domain.lower() != domain.lower() or not local.lower().startswith(LOCAL_PREFIX):
        raise MalformedToken(f"not a reply address: {address!r}")
    return parse_token(local[len(LOCAL_PREFIX) :])


def verify_token(token: ReplyToken, recipient: str, *, keys: Sequence[tuple[int, bytes]]) -> None:
    """Check ``token`` against ``recipient`` in constant time; raise :class:`ForgedToken` if it fails.

    ``keys`` holds every accepted ``(key_id, secret)``: retired keys keep verifying.
    """
    for key_id, secret in keys:
        if key_id == token.key_id:
            expected = _mac(secret, key_id, token.ticket_key, recipient)
            if hmac.compare_digest(expected, token.mac):
                return
            break
    raise ForgedToken(f"reply token does not verify for key id {token.key_id}")


def make_bounce_address(email_key: int, *, key_id: int, secret: bytes, domain: str) -> str:
    """The return path of outbox email ``email_key``: ``bounces+<token>@<domain>``."""
    if not 0 <= email_key < 2 ** (8 * TICKET_KEY_BYTES):
        raise ValueError(f"email key out of range: {email_key!r}")
    raw = bytes([key_id]) + email_key.to_bytes(TICKET_KEY_BYTES, "big") + _bounce_mac(secret, key_id, email_key)
    return f"{BOUNCE_PREFIX}{base64.b32encode(raw).decode().rstrip('=').lower()}@{domain}"


def parse_bounce_address(address: str, *, domain: str) -> BounceToken:
    """Decode the token of ``bounces+<token>@<domain>``; raise :class:`MalformedToken` otherwise."""
    local, at, addr_domain = address.strip().strip("<>").rpartition("@")
    if not at or addr_domain.lower() != domain.lower() or not local.lower().startswith(BOUNCE_PREFIX):
        raise MalformedToken(f"not a bounce address: {address!r}")
    token = parse_token(local[len(BOUNCE_PREFIX):])
    return BounceToken(key_id=token.key_id, email_key=token.ticket_key, mac=token.mac)


def verify_bounce_token(token: BounceToken, *, keys: Sequence[tuple[int, bytes]]) -> None:
    """Raise :class:`ForgedToken` unless we minted ``token`` (retired keys still verify)."""
    for key_id, secret in keys:
        if key_id == token.key_id:
            if hmac.compare_digest(_bounce_mac(secret, key_id, token.email_key), token.mac):
                return
            break
    raise ForgedToken(f"bounce token does not verify for key id {token.key_id}")


@dataclass(frozen=True)
class Keyring:
    """The reply-token keys (signing key first, retired keys after) and the reply domain."""

    keys: tuple[tuple[int, bytes], ...]
    domain: str

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a keyring needs at least one key")

    def address_for(self, ticket_key: int, recipient: str) -> str:
        """The reply address of ``ticket_key`` for ``recipient``, signed with the newest key."""
        key_id, secret = self.keys[0]
        return make_reply_address(ticket_key, recipient, key_id=key_id, secret=secret, domain=self.domain)

    def open(self, address: str) -> ReplyToken:
        """Decode ``address`` without verifying it (raises :class:`MalformedToken`)."""
        return parse_reply_address(address, domain=self.domain)

    def verify(self, token: ReplyToken, recipient: str) -> None:
        """Raise :class:`ForgedToken` unless ``token`` was minted by us for ``recipient``."""
        verify_token(token, recipient, keys=self.keys)

    def bounce_address_for(self, email_key: int) -> str:
        """The return path of outbox email ``email_key``, signed with the newest key."""
        key_id, secret = self.keys[0]
        return make_bounce_address(email_key, key_id=key_id, secret=secret, domain=self.domain)

    def email_for_bounce(self, address: str) -> int:
        """The outbox email a bounce address names; raises :class:`MalformedToken` or :class:`ForgedToken`."""
        token = parse_bounce_address(address, domain=self.domain)
        verify_bounce_token(token, keys=self.keys)
        return token.email_key
