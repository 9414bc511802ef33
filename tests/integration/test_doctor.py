"""``web2chat-gateway doctor``: passes on a good configuration, and names the problem and what to set on an
unreachable relay and an unmigrated store."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import doctor
from gateway.cli import main
from gateway.store import make_engine, migrate
from tests.integration.relay import ScriptedRelay, running_relay
from tests.services import free_port, postgres_schema_url

STRONG = "a-secret-long-enough-to-be-strong-0123456789"


def good(tmp_path: Path, relay_port: int) -> dict[str, str]:
    """A configuration doctor should pass: a migrated store, a relay, a real reply domain, strong secrets."""
    url = f"sqlite:///{tmp_path / 'doctor.sqlite3'}"
    migrate(make_engine(url))
    return {
        "GATEWAY_DATABASE_URL": url,
        "GATEWAY_SMTP_RELAY_URL": f"smtp://127.0.0.1:{relay_port}",
        "GATEWAY_REPLY_DOMAIN": "reply.example.test",
        "GATEWAY_SECRET_KEYS": f"1:{STRONG}",
        "GATEWAY_API_KEYS": STRONG,
        "GATEWAY_MESSENGER_SECRET": STRONG,
    }


@pytest.fixture(autouse=True)
def reply_domain_has_mx(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DNS in tests: the reply domain's MX look-up answers as a configured domain's would."""
    monkeypatch.setattr(doctor, "mx_hosts", lambda domain: ("mx.acme.example.test",))


def test_a_good_configuration_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every line is ok and the exit code is 0; the relay is greeted and left without a message."""
    relay, port = ScriptedRelay(), free_port()
    with running_relay(relay, port):
        code = main(["doctor"], good(tmp_path, port))
    out = capsys.readouterr().out
    assert 0 == code, out
    assert all(line.startswith("ok ") for line in out.splitlines()), out
    assert [] == relay.received


def test_an_unreachable_relay_is_one_problem_naming_the_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A relay on a closed port: exit 1 and one PROBLEM line, naming GATEWAY_SMTP_RELAY_URL."""
    code = main(["doctor"], good(tmp_path, free_port()))
    problems = [line for line in capsys.readouterr().out.splitlines() if line.startswith("PROBLEM")]
    assert 1 == code
    assert 1 == len(problems), problems
    assert problems[0].startswith("PROBLEM  relay: relay 127.0.0.1:")
    assert problems[0].endswith("check GATEWAY_SMTP_RELAY_URL")


@pytest.mark.postgres
def test_an_unmigrated_store_says_to_migrate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A PostgreSQL schema without the tables: a PROBLEM line naming the pending migrations and the command."""
    relay, port = ScriptedRelay(), free_port()
    with postgres_schema_url() as url, running_relay(relay, port):
        code = main(["doctor"], {**good(tmp_path, port), "GATEWAY_DATABASE_URL": url})
    problems = [line for line in capsys.readouterr().out.splitlines() if line.startswith("PROBLEM")]
    assert 1 == code
    assert 1 == len(problems), problems
    assert problems[0].startswith("PROBLEM  store: ")
    assert "migration(s) not applied (0001, " in problems[0]
    assert problems[0].endswith("run web2chat-gateway migrate")


@pytest.mark.parametrize(
    ("answer", "ok", "said"),
    [
        (("mx1.acme.example.test", "mx2.acme.example.test"), True, "MX mx1.acme.example.test, mx2.acme.example.test"),
        ("reply.acme.example.test has no MX record", False, "give reply.acme.example.test an MX record"),
        ("reply.acme.example.test does not exist in DNS", False, "does not exist"),
        ("cannot check (DNS not reachable from here: Timeout)", True, "cannot check"),
    ],
)
def test_the_reply_domain_mx_is_checked_and_unreachable_dns_said_plainly(answer: object, ok: bool, said: str) -> None:
    """MX hosts are named; a missing MX or domain is a problem; DNS out of reach is said, not failed."""
    from gateway.settings import Settings

    finding = doctor._reply_domain(Settings(reply_domain="reply.acme.example.test"), lookup=lambda d: answer)  # type: ignore[arg-type,return-value]
    assert ok == finding.ok
    assert said in finding.line
