"""Inbound side: the SMTP edge, parsing, classification, reply extraction and threading."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inbound.extract import ExtractedReply, extract_reply

__all__ = ["ExtractedReply", "extract_reply"]


def __getattr__(name: str) -> Any:
    # Lazy, so importing one inbound module does not load the others.
    if name in __all__:
        from inbound import extract

        return getattr(extract, name)
    raise AttributeError(f"module 'inbound' has no attribute {name!r}")
