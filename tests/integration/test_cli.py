"""The web2chat-gateway command: migrate, outbox, parse, and clear errors for bad configuration."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

import gateway
from gateway.app import build_gateway
from gateway.cli import build_parser, main
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
    assert 0 == main(["outbox"], env(tmp_path))
    table = capsys.readouterr().out.splitlines()
    assert ["id", "created", "(UTC)", "status", "tries", "to", "last", "event", "subject"] == table[0].split()
    assert table[1].split()[3:] == ["queued", "0", "ada@example.com", "queued", "[#T-1]", "Printer"]


def test_version_names_the_release(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the program and its version and exits 0."""
    with pytest.raises(SystemExit) as raised:
        main(["--version"], {})
    assert 0 == raised.value.code
    assert f"web2chat-gateway {gateway.__version__}\n" == capsys.readouterr().out


def test_every_command_and_option_is_described() -> None:
    """Each command has a summary and a description, and each of its arguments a help text."""
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    summaries = {choice.dest: choice.help for choice in commands._choices_actions}
    assert set(summaries) == set(commands.choices)
    for name, command in commands.choices.items():
        assert summaries[name], name
        assert command.description and len(command.description) > len(summaries[name] or ""), name
        for action in command._actions:
            assert action.help, f"{name} {action.dest}"


@pytest.mark.parametrize("args", [["--help"], ["outbox"], ["quarantine", "list"], ["parse", "-"]])
def test_quick_commands_do_not_import_the_servers(tmp_path: Path, args: list[str]) -> None:
    """--help, outbox, quarantine list and parse start without importing the API, broker or migration
    libraries (what made every call take 2-3 s)."""
    heavy = ["alembic", "dramatiq", "fastapi", "jinja2", "redis", "uvicorn"]
    if args[0] in ("--help", "outbox", "quarantine"):
        heavy.append("flanker")
    probe = (
        "import sys\nfrom gateway.cli import main\n"
        "try:\n    main(sys.argv[2:], {'GATEWAY_DATABASE_URL': sys.argv[1]})\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)\n"
    )
    database = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    main(["migrate"], {"GATEWAY_DATABASE_URL": database})
    finished = subprocess.run(
        [sys.executable, "-c", probe, database, *args], input=REPLY, capture_output=True, timeout=60, check=True
    )
    assert "[]" == finished.stderr.decode().strip().splitlines()[-1]


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
