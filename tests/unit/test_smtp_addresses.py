"""The listener's MAIL/RCPT address parsing answers exactly as aiosmtpd's own does."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

from inbound.server import _Guarded

ARGS = [
    "", "<>", "<ada@example.com>", "ada@example.com", " <ada@example.com> SIZE=100", "<ada@example.com> BODY=8BITMIME",
    "<reply+abc@reply.example.test>", "<\"quoted local\"@example.com>", "<@relay.test:ada@example.com>",
    "<ada@[127.0.0.1]>", "<ada", "ada@", "<<>>", "@", "<ada@example.com", "\u00e9l\u00e8ve@exemple.fr",
    "<" + "x" * 64 + "@example.com>", "<" + "x" * 65 + "@example.com>", "<ada@example.com>x", "<ada@example.com>  ",
    "<ada@example.com> (comment) SIZE=1", "<ada@example.com>\tSIZE=1 (c)", "<a..b@example.com>", "<.a@example.com>",
    "<ada@example..com>", "<ada@-example.com>", "<a!#$%&'*+/=?^_`{|}~-@x.y>", "<ada@example.com>(c)",
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


_PIECES = st.sampled_from(["<", ">", "@", ".", " ", "\t", "(", ")", "\"", "[", "]", ":", ",", "\\", "ada", "x", "-",
                           "+", "example", "com", "(c)", "SIZE=1", "=", "\u00e9", "'", "{"])


_TEXT = st.lists(_PIECES, max_size=8).map("".join)
_ANGLED = st.tuples(_TEXT, _TEXT, _TEXT, _TEXT).map(lambda p: f"{p[0]}<{p[1]}@{p[2]}>{p[3]}")


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.lists(_PIECES, max_size=14).map("".join), _ANGLED))
def test_any_argument_parses_as_aiosmtpd_parses_it(arg: str) -> None:
    """For arbitrary MAIL/RCPT arguments built from address syntax, the listener's answer is aiosmtpd's."""
    for limit in (0, 4):
        server = SimpleNamespace(local_part_limit=limit)
        assert outcome(SMTP._getaddr, server, arg) == outcome(_Guarded._getaddr, server, arg)
