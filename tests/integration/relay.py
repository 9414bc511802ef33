"""A real SMTP relay on loopback (aiosmtpd) whose answers a test can script."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

__all__ = ["ScriptedRelay", "running_relay"]


@dataclass
class ScriptedRelay:
    """Answers RCPT and DATA from scripts (then 250), and keeps what it accepted."""

    rcpt_answers: list[str] = field(default_factory=list)
    data_answers: list[str] = field(default_factory=list)
    received: list[bytes] = field(default_factory=list)
    #: The envelope sender (MAIL FROM) of each message in ``received``.
    senders: list[str] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        answer = self.rcpt_answers.pop(0) if self.rcpt_answers else "250 OK"
        if answer.startswith("250"):
            envelope.rcpt_tos.append(address)
        return answer

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = self.data_answers.pop(0) if self.data_answers else "250 OK"
        if answer.startswith("250"):
            self.received.append(envelope.original_content or envelope.content)
            self.senders.append(envelope.mail_from)
        return answer


@contextmanager
def running_relay(
    relay: ScriptedRelay,
    port: int,
    *,
    implicit_tls: ssl.SSLContext | None = None,
    starttls: ssl.SSLContext | None = None,
    password: str | None = None,
) -> Iterator[Controller]:
    """``relay`` listening on 127.0.0.1:``port`` (implicit TLS, or STARTTLS with a required login)."""
    options: dict[str, Any] = {}
    if starttls is not None:
        options.update(tls_context=starttls, require_starttls=True)
    if password is not None:
        def check(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> AuthResult:
            ok = auth.login == b"gateway" and auth.password == password.encode()
            relay.logins.append((auth.login.decode(), ok))
            return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

        options.update(authenticator=check, auth_required=True, auth_require_tls=starttls is not None)
    controller = Controller(relay, hostname="127.0.0.1", port=port, ssl_context=implicit_tls, **options)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()
