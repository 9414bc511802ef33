"""Is the sender of a reply the ticket's customer? (pure)

The message must have exactly one ``From`` header naming exactly one mailbox (RFC 5322 allows
no more without a ``Sender``; two ``From`` headers, or a list, are read differently by different
mail programs, so they cannot be believed), and that mailbox must be the customer's address
(case-insensitive, after normalising). When the
upstream server named by ``GATEWAY_TRUSTED_AUTHSERV_ID`` recorded ``dmarc=fail`` in its
``Authentication-Results`` header, the ``From`` cannot be believed either. Headers from any
other authserv-id are ignored: anyone can write them.
"""

from __future__ import annotations

from email.utils import getaddresses

import authres

from gateway.addresses import normalise_address
from gateway.errors import DmarcFailed, InboundError, SenderNotCustomer
from inbound.parse import ParsedEmail

__all__ = ["check_sender", "dmarc_result", "from_problem", "same_address"]


def _key(address: str) -> str:
    try:
        return normalise_address(address).casefold()
    except ValueError:
        return address.strip().strip("<>").casefold()


def same_address(a: str | None, b: str | None) -> bool:
    """Whether ``a`` and ``b`` are the same mailbox (case-insensitive, normalised)."""
    return bool(a) and bool(b) and _key(a or "") == _key(b or "")


def dmarc_result(parsed: ParsedEmail, *, trusted_authserv_id: str) -> str | None:
    """The DMARC result the trusted server recorded (topmost of its headers), or None."""
    for value in parsed.header_values("authentication-results"):
        try:
            header = authres.AuthenticationResultsHeader.parse_value(value)
        except Exception:  # noqa: BLE001 - an unparseable header is not evidence either way
            continue
        if str(header.authserv_id).lower() != trusted_authserv_id.lower():
            continue
        results = [str(r.result).lower() for r in header.results if str(r.method).lower() == "dmarc"]
        return results[0] if results else None
    return None


def from_problem(parsed: ParsedEmail) -> str | None:
    """Why the ``From`` of ``parsed`` does not name one author beyond doubt, or None when it does."""
    values = parsed.header_values("from")
    if len(values) != 1:
        return f"the message has {len(values)} From headers; exactly one is allowed"
    # The same address written twice (``ada@example.com <ada@example.com>``, seen from real clients) is one mailbox.
    mailboxes = list(dict.fromkeys(_key(a) for _, a in getaddresses([values[0]]) if "@" in a))
    if len(mailboxes) != 1:
        return f"From names {len(mailboxes)} mailboxes ({values[0][:200]!r}); exactly one is allowed"
    if not same_address(mailboxes[0], parsed.from_addr):
        return f"From is ambiguous ({values[0][:200]!r}): it reads as {mailboxes[0]!r} or {parsed.from_addr!r}"
    return None


def check_sender(
    parsed: ParsedEmail, *, customer_email: str, trusted_authserv_id: str | None
) -> InboundError | None:
    """None if the reply may land as the customer's, else the reason to quarantine it."""
    problem = from_problem(parsed)
    if problem is not None:
        return SenderNotCustomer(f"sender is not the ticket's customer beyond doubt: {problem}")
    if not same_address(parsed.from_addr, customer_email):
        return SenderNotCustomer(f"sender {parsed.from_addr!r} is not the ticket's customer")
    if trusted_authserv_id:
        result = dmarc_result(parsed, trusted_authserv_id=trusted_authserv_id)
        if result == "fail":
            return DmarcFailed(f"{trusted_authserv_id} recorded dmarc=fail for {parsed.from_addr!r}")
    return None
