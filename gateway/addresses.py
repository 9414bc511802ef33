"""Email address checks and normalisation (pure)."""

from __future__ import annotations

import re

__all__ = ["is_plain_address", "normalise_address"]

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LOCAL = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_LABEL = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?|xn--[A-Za-z0-9-]{1,59})"
_ADDRESS = re.compile(rf"^({_LOCAL})@({_LABEL}(?:\.{_LABEL})+)$")
_PLAIN = re.compile(rf"{_LOCAL}@{_LABEL}(?:\.{_LABEL})*\Z")


def normalise_address(value: str) -> str:
    """``" Ada@Example.COM "`` -> ``"Ada@example.com"``; raise ValueError if it is not an address.

    The domain is case-folded (it is case-insensitive); the local part is kept as written,
    and comparisons that must ignore its case use :func:`str.casefold` on the result.
    """
    candidate = value.strip()
    if len(candidate) > 254:
        raise ValueError(f"email address longer than 254 characters: {candidate[:40]!r}...")
    match = _ADDRESS.match(candidate)
    if match is None or len(match.group(1)) > 64:
        raise ValueError(f"not a valid email address: {value!r}")
    return f"{match.group(1)}@{match.group(2).lower()}"


def is_plain_address(value: str) -> bool:
    """Whether ``value`` is a bare ``local@domain`` of ASCII dot-atoms (``support@localhost``
    included), with nothing to quote: safe to put between ``<`` and ``>`` as it is."""
    return len(value) <= 254 and _PLAIN.match(value) is not None
