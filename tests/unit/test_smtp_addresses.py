"""The listener's MAIL/RCPT address parsing answers exactly as aiosmtpd's own does."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest
from aiosmtpd.smtp import SMTP

from inbound.listener import _Guarded

ARGS = [
    "", "<>", "<ada@example.com>", "ada@example.com", " <ada@example.com> SIZE=100", "<ada@example.com> BODY=8BITMIME",
    "<reply+abc@reply.example.test>", "<\"quoted local\"@example.com>", "<@relay.test:ada@example.com>",
    "<ada@[127.0.0.1]>", "<ada", "ada@", "<<>>", "@", "<ada@example.com", "\u00e9l\u00e8ve@exemple.fr",
    "<" + "x" * 64 + "@example.com>", "<" + "x" * 65 + "@example.com>",
]


@pytest.mark.parametrize("limit", [0, 64])
@pytest.mark.parametrize("arg", ARGS)
def test_address_parsing_matches_aiosmtpd(arg: str, limit: int) -> None:
    """Every address form (valid, malformed, over the local-part limit) parses to what aiosmtpd itself returns."""
    server = SimpleNamespace(local_part_limit=limit)
    assert outcome(SMTP._getaddr, server, arg) == outcome(_Guarded._getaddr, server, arg)


def outcome(parse: Callable[..., object], server: object, arg: str) -> object:
    """What ``parse`` returns, or the type of what it raises (aiosmtpd turns that into a 500 reply)."""
    try:
        return parse(server, arg)
    except Exception as exc:  # noqa: BLE001 - compared, not swallowed
        return type(exc)
