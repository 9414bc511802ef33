"""Email address checks and normalisation (pure)."""

from __future__ import annotations

import re

__all__ = ["normalise_address"]

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LOCAL = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_LABEL = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?|xn--[A-Za-z0-9-]{1,59})"
_ADDRESS = re.compile(rf"^({_LOCAL})@({_LABEL}(?:\.{_LABEL})+)$")


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
