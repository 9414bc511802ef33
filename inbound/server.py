"""The inbound SMTP edge (aiosmtpd): hooks that return reply lines, no business logic.

Every blocking call (a recipient look-up, the durable commit) runs in a thread, so one slow
commit never stalls the other connections on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiosmtpd.controller import Controller

__all__ = ["InboundHandler", "make_controller"]

log = logging.getLogger(__name__)

#: Answer when the store cannot commit: the sending server keeps the message and retries.
STORE_UNAVAILABLE = "451 4.3.0 Cannot store the message right now; please try again later"


class InboundHandler:
    """aiosmtpd handler: RCPT asks ``refusal``; DATA commits with ``store`` then calls ``stored``."""

    def __init__(
        self,
        *,
        refusal: Callable[[str], str | None],
        store: Callable[[str, Sequence[str], bytes], int],
        stored: Callable[[int], None],
    ) -> None:
        self._refusal = refusal
        self._store = store
        self._stored = stored

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        loop = asyncio.get_running_loop()
        try:
            reason = await loop.run_in_executor(None, self._refusal, address)
        except Exception:
            log.exception("recipient check failed for %s", address)
            return "451 4.3.0 Cannot check the recipient right now; please try again later"
        if reason is not None:
            return f"550 5.1.1 {reason}"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        loop = asyncio.get_running_loop()
        raw: bytes = envelope.original_content or envelope.content
        try:
            pk = await loop.run_in_executor(None, self._store, envelope.mail_from or "", list(envelope.rcpt_tos), raw)
        except Exception:
            log.exception("could not commit inbound message from %s", envelope.mail_from)
            return STORE_UNAVAILABLE
        try:
            self._stored(pk)
        except Exception:
            log.warning("could not enqueue inbound message %s; the sweeper will", pk, exc_info=True)
        return f"250 2.0.0 Message accepted as {pk}"


def make_controller(
    handler: InboundHandler, *, host: str, port: int, max_message_bytes: int, timeout: float = 300
) -> Controller:
    """A controller running the SMTP server on its own thread and event loop."""
    return Controller(
        handler,
        hostname=host,
        port=port,
        data_size_limit=max_message_bytes,
        enable_SMTPUTF8=True,
        decode_data=False,
        timeout=timeout,
        ready_timeout=10,
    )
