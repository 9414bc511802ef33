"""Messenger keys (pure): issued for one customer, verified, refused when forged, expired or malformed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.errors import BadMessengerToken
from gateway.messenger.tokens import Grant, issue, verify

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
SECRET = b"messenger-secret-0123456789"


def test_a_key_carries_its_customer_until_it_expires() -> None:
    """A fresh key verifies to its customer and expiry."""
    token = issue("cust-7", expires_at=NOW + timedelta(hours=1), secret=SECRET)
    assert Grant("cust-7", NOW + timedelta(hours=1)) == verify(token, secrets=[SECRET], now=NOW)


def test_old_secrets_still_verify_during_rotation() -> None:
    """A key signed with a secret still listed verifies."""
    token = issue("c", expires_at=NOW + timedelta(minutes=5), secret=SECRET)
    assert "c" == verify(token, secrets=[b"a-newer-secret-0123456", SECRET], now=NOW).customer_id


@pytest.mark.parametrize(
    ("mangle", "says"),
    [
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), "does not verify"),
        (lambda t: t.replace(t.split(".")[1], issue("other", expires_at=NOW + timedelta(days=1),
                                                    secret=SECRET).split(".")[1]), "does not verify"),
        (lambda t: "w2c_" + t, "not a Messenger key"),
        (lambda t: "w2cm.!!!." + t.rsplit(".", 1)[1], "does not verify"),
        (lambda t: t + "x" * 2000, "not a Messenger key"),
    ],
    ids=["forged signature", "customer swapped", "not ours", "garbage payload", "too long"],
)
def test_tampered_keys_are_refused(mangle: object, says: str) -> None:
    """Changing any part of a key makes it worthless, with a reason."""
    token = issue("cust-7", expires_at=NOW + timedelta(hours=1), secret=SECRET)
    with pytest.raises(BadMessengerToken, match=says):
        verify(mangle(token), secrets=[SECRET], now=NOW)  # type: ignore[operator]


def test_an_expired_key_is_refused_naming_when() -> None:
    """A key past its expiry is refused, saying when it expired."""
    token = issue("cust-7", expires_at=NOW, secret=SECRET)
    with pytest.raises(BadMessengerToken, match="expired at 2026-11-26T10:00:00"):
        verify(token, secrets=[SECRET], now=NOW)
