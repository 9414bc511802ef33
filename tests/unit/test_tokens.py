"""Reply tokens: only the gateway can mint them, and they survive what MTAs do to addresses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import ForgedToken, MalformedToken
from gateway.tokens import TOKEN_LENGTH, Keyring, make_reply_address, parse_reply_address, verify_token

DOMAIN = "reply.example.test"
KEYS = ((7, b"current-secret-0123456789"), (6, b"retired-secret-0123456789"))
ring = Keyring(KEYS, DOMAIN)

ticket_keys = st.integers(min_value=0, max_value=2**48 - 1)
_local = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-", min_size=1, max_size=30)
_label = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=20)
recipients = st.builds(lambda local, host, tld: f"{local}@{host}.{tld}", _local, _label, _label)
B32 = "abcdefghijklmnopqrstuvwxyz234567"


@given(ticket_keys, recipients)
def test_round_trip(ticket_key: int, recipient: str) -> None:
    """An address minted for a ticket and recipient decodes to that ticket and verifies for that recipient."""
    address = ring.address_for(ticket_key, recipient)
    token = ring.open(address)
    assert ticket_key == token.ticket_key
    ring.verify(token, recipient)


@given(ticket_keys, recipients)
def test_local_part_fits_an_address(ticket_key: int, recipient: str) -> None:
    """The local part is at most 64 characters of lower-case base32 after 'reply+'."""
    local = ring.address_for(ticket_key, recipient).split("@")[0]
    assert len(local) <= 64
    token = local.removeprefix("reply+")
    assert TOKEN_LENGTH == len(token)
    assert set(token) <= set(B32)


@given(ticket_keys, recipients, st.data())
def test_any_single_changed_character_is_rejected(ticket_key: int, recipient: str, data: st.DataObject) -> None:
    """Changing any one character of the token makes the address fail to open or to verify."""
    address = ring.address_for(ticket_key, recipient)
    local, domain = address.split("@")
    token = local.removeprefix("reply+")
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    replacement = data.draw(st.sampled_from([c for c in B32 if c != token[position]]))
    tampered = "reply+" + token[:position] + replacement + token[position + 1 :] + "@" + domain
    with pytest.raises((MalformedToken, ForgedToken)):
        ring.verify(ring.open(tampered), recipient)


@given(ticket_keys, recipients)
def test_case_folded_addresses_still_verify(ticket_key: int, recipient: str) -> None:
    """MTAs that upper-case the address or the recipient do not break the token."""
    address = ring.address_for(ticket_key, recipient)
    ring.verify(ring.open(address.upper()), recipient.upper())


def test_old_key_still_verifies_after_rotation() -> None:
    """An address signed with a key that has since been retired still verifies while the key is listed."""
    old = make_reply_address(42, "ada@example.com", key_id=6, secret=KEYS[1][1], domain=DOMAIN)
    ring.verify(ring.open(old), "ada@example.com")
    rotated_out = Keyring(KEYS[:1], DOMAIN)
    with pytest.raises(ForgedToken):
        rotated_out.verify(rotated_out.open(old), "ada@example.com")


def test_token_does_not_verify_for_another_recipient() -> None:
    """A reply address forwarded to someone else does not verify for them."""
    token = ring.open(ring.address_for(42, "ada@example.com"))
    with pytest.raises(ForgedToken):
        ring.verify(token, "mallory@example.com")


def test_token_signed_with_an_unknown_key_is_forged() -> None:
    """A token claiming a key id we never had is refused."""
    address = make_reply_address(42, "ada@example.com", key_id=99, secret=b"attacker-secret-0123", domain=DOMAIN)
    with pytest.raises(ForgedToken):
        verify_token(ring.open(address), "ada@example.com", keys=KEYS)


@pytest.mark.parametrize(
    "address",
    [
        "support@reply.example.test",
        "reply+@reply.example.test",
        "reply+abc@reply.example.test",
        "reply+" + "a" * TOKEN_LENGTH + "@other.example",
        "reply+" + "1" * TOKEN_LENGTH + "@reply.example.test",
        "reply+" + "a" * (TOKEN_LENGTH + 1) + "@reply.example.test",
        "no-at-sign",
    ],
)
def test_addresses_not_of_our_form_are_malformed(address: str) -> None:
    """Anything that is not reply+<28 base32 chars>@<our domain> is refused before any key is tried."""
    with pytest.raises(MalformedToken):
        parse_reply_address(address, domain=DOMAIN)


def test_bounce_addresses_name_their_email_and_verify_across_key_rotation() -> None:
    """A bounce address names its outbox email, is lower-case base32, and still verifies after a new key."""
    old = Keyring(((1, b"first-secret"),), "reply.example.test")
    address = old.bounce_address_for(4242)
    local = address.split("@")[0]
    assert local.startswith("bounces+") and local == local.lower()
    rotated = Keyring(((2, b"second-secret"), (1, b"first-secret")), "reply.example.test")
    assert 4242 == rotated.email_for_bounce(address.upper().replace("REPLY.EXAMPLE.TEST", "reply.example.test"))


def test_a_forged_or_foreign_bounce_address_is_refused() -> None:
    """An altered token, an unknown key, or a reply token dressed as a bounce token does not verify."""
    ring = Keyring(((1, b"first-secret"),), "reply.example.test")
    address = ring.bounce_address_for(7)
    local, domain = address.split("@")
    forged = local[:-1] + ("a" if local[-1] != "a" else "b") + "@" + domain
    with pytest.raises((ForgedToken, MalformedToken)):
        ring.email_for_bounce(forged)
    reply_token = ring.address_for(7, "ada@example.com").split("@")[0].removeprefix("reply+")
    with pytest.raises(ForgedToken):
        ring.email_for_bounce(f"bounces+{reply_token}@{domain}")
    with pytest.raises(MalformedToken):
        ring.email_for_bounce(address.replace("bounces+", "reply+"))
    with pytest.raises(ForgedToken):
        Keyring(((9, b"other"),), "reply.example.test").email_for_bounce(address)
