"""Which ticket an inbound message belongs to (pure): the reply token first, then headers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.errors import TokenError
from gateway.tokens import Keyring, ReplyToken

__all__ = ["TokenCandidate", "token_candidates"]


@dataclass(frozen=True)
class TokenCandidate:
    """A recipient address that decodes as one of our reply tokens (not yet verified)."""

    address: str
    token: ReplyToken


def token_candidates(addresses: Sequence[str], keyring: Keyring) -> list[TokenCandidate]:
    """The addresses among ``addresses`` that carry a well-formed reply token, in order."""
    found: list[TokenCandidate] = []
    for address in addresses:
        try:
            found.append(TokenCandidate(address, keyring.open(address)))
        except TokenError:
            continue
    return found
