"""The web2chat-gateway command: migrate, outbox, parse, and clear errors for bad configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.app import build_gateway
from gateway.cli import main
from gateway.settings import load_settings

REPLY = (
    b"From: Ada <ada@example.com>\r\n"
    b"To: reply+aaaaaaaaaaaaaaaaaaaaaaaaaaaa@reply.localhost\r\n"
    b"Subject: Re: [#T-1] Printer\r\n"
    b"Message-ID: <reply-1@mail.example.com>\r\n"
    b"\r\n"
    b"Works now, thanks!\r\n"
    b"\r\n"
    b"On Thu, Nov 26, 2026 at 10:00 AM Support <support@example.com> wrote:\r\n"
    b"> Hi Ada,\r\n"
    b"> we opened ticket T-1.\r\n"
)


def env(tmp_path: Path) -> dict[str, str]:
    return {"GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}"}


def test_migrate_reports_what_it_applied(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """migrate applies the schema once and says so; a second run has nothing to do."""
    assert 0 == main(["migrate"], env(tmp_path))
    first = capsys.readouterr().out
    assert first.startswith("applied ")
    assert "0001" in first
    assert 0 == main(["migrate"], env(tmp_path))
    assert "already current" in capsys.readouterr().out


def test_bad_configuration_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    """A malformed variable stops the command with a line naming it."""
    with pytest.raises(SystemExit) as raised:
        main(["outbox"], {**env(tmp_path), "GATEWAY_SMTP_PORT": "not-a-port"})
    assert str(raised.value).startswith("web2chat-gateway: configuration error: GATEWAY_SMTP_PORT:")


def test_outbox_lists_kept_emails_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """outbox --json shows each kept email with its recipient, subject, status and full source."""
    from gateway.api.schemas import TicketCreatedIn

    gw = build_gateway(load_settings(env(tmp_path)))
    event = TicketCreatedIn.model_validate(
        {
            "type": "ticket.created",
            "id": "e1",
            "occurred_at": "2026-11-26T10:00:00Z",
            "ticket": {"id": "T-1", "title": "Printer", "description": "Blank", "created_by": "teammate"},
            "customer": {"id": "c1", "email": "ada@example.com", "name": "Ada"},
        }
    ).record()
    gw.events.ticket_created(event, now=gw.clock())
    assert 0 == main(["outbox", "--json"], env(tmp_path))
    emails = json.loads(capsys.readouterr().out)
    assert ["ada@example.com"] == [e["to"] for e in emails]
    assert "[#T-1] Printer" == emails[0]["subject"]
    assert "queued" == emails[0]["status"]
    assert "Reply-To: reply+" in emails[0]["raw"]


def test_parse_prints_the_new_text_without_touching_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """parse FILE prints, as JSON, the reply text and the rule that cut the quote."""
    path = tmp_path / "reply.eml"
    path.write_bytes(REPLY)
    assert 0 == main(["parse", str(path)], {})
    result = json.loads(capsys.readouterr().out)
    assert "Works now, thanks!" == result["reply"]["text"]
    assert result["reply"]["rule"]
    assert "<reply-1@mail.example.com>" == result["message_id"]


def test_parse_of_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    """parse names the file it cannot read."""
    with pytest.raises(SystemExit) as raised:
        main(["parse", str(tmp_path / "nope.eml")], {})
    assert "cannot read" in str(raised.value)
