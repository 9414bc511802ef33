"""Settings: sensible defaults, and one clear line naming the variable for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.app import build_gateway
from gateway.errors import ConfigError
from gateway.settings import Settings, load_settings


def test_defaults_need_no_environment() -> None:
    """With nothing set, the gateway runs embedded: SQLite here, no Redis, no relay, loopback ports."""
    settings = load_settings({})
    assert "sqlite:///web2chat-gateway.sqlite3" == settings.database_url
    assert settings.redis_url is None
    assert settings.smtp_relay_url is None
    assert ("127.0.0.1", 8025) == (settings.api_host, settings.api_port)
    assert ("127.0.0.1", 2525) == (settings.smtp_host, settings.smtp_port)
    assert 180 == settings.unseen_delay_seconds
    assert "en" == settings.default_locale


def test_values_are_read_from_prefixed_variables() -> None:
    """GATEWAY_* variables set the corresponding settings."""
    settings = load_settings(
        {
            "GATEWAY_DATABASE_URL": "postgresql://u@db:5432/gw",
            "GATEWAY_REDIS_URL": "redis://cache:6379/1",
            "GATEWAY_SMTP_RELAY_URL": "smtps://user:pw@relay.example.com:465",
            "GATEWAY_REPLY_DOMAIN": "Reply.Example.COM",
            "GATEWAY_SECRET_KEYS": "2:new-secret-0123456789, 1:old-secret-0123456789",
            "GATEWAY_API_KEYS": "key-one-0123456789abc,key-two-0123456789abc",
            "GATEWAY_UNSEEN_DELAY_SECONDS": "5",
            "GATEWAY_SMTP_HOSTNAME": "MX.Example.com",
            "GATEWAY_DEFAULT_LOCALE": "pt-BR",
        }
    )
    assert "mx.example.com" == settings.smtp_hostname
    assert "pt-BR" == settings.default_locale
    assert "reply.example.com" == settings.reply_domain
    assert ((2, b"new-secret-0123456789"), (1, b"old-secret-0123456789")) == settings.secret_keys
    assert ("key-one-0123456789abc", "key-two-0123456789abc") == settings.api_keys
    assert 5 == settings.unseen_delay_seconds


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_API_PORT", "eighty"),
        ("GATEWAY_SMTP_PORT", "70000"),
        ("GATEWAY_DATABASE_URL", "mysql://x@y/z"),
        ("GATEWAY_REDIS_URL", "http://cache"),
        ("GATEWAY_SMTP_RELAY_URL", "smtp://"),
        ("GATEWAY_REPLY_DOMAIN", "not a domain"),
        ("GATEWAY_SECRET_KEYS", "1:short"),
        ("GATEWAY_SECRET_KEYS", "300:a-long-enough-secret-value"),
        ("GATEWAY_SECRET_KEYS", "1:a-long-enough-secret-value,1:another-long-secret-value"),
        ("GATEWAY_API_KEYS", "tiny"),
        ("GATEWAY_UNSEEN_DELAY_SECONDS", "-1"),
        ("GATEWAY_BRAND_COLOR", "blue"),
        ("GATEWAY_SMTP_HOSTNAME", "mx example com"),
        ("GATEWAY_DEFAULT_LOCALE", "en; rm -rf"),
        ("GATEWAY_WEBHOOK_BATCH", "0"),
        ("GATEWAY_WEBHOOK_BATCH", "101"),
    ],
)
def test_bad_value_names_the_variable(variable: str, value: str) -> None:
    """A malformed value raises ConfigError whose one-line message starts with the variable's name."""
    with pytest.raises(ConfigError) as raised:
        load_settings({variable: value})
    message = str(raised.value)
    assert message.startswith(variable + ":")
    assert "\n" not in message
    assert "a-long-enough" not in message, "secrets must not be echoed"


def test_console_log_lines_read_as_key_value_pairs() -> None:
    """The console format: time, level, event, then key=value (quoted when it has spaces)."""
    import io
    import logging

    from gateway.logs import configure, event

    stream = io.StringIO()
    handler = configure(level="info", fmt="console", stream=stream)
    try:
        event(logging.getLogger("gateway.test"), "email.sent", email_id=7, reply="250 2.0.0 Ok: queued", none=None)
        logging.getLogger("gateway.test").debug("not shown at info")
    finally:
        logging.getLogger().removeHandler(handler)
    (line,) = stream.getvalue().splitlines()
    assert line.endswith('info    email.sent email_id=7 reply="250 2.0.0 Ok: queued"')


def test_a_default_locale_without_a_catalog_stops_the_gateway(tmp_path: Path) -> None:
    """GATEWAY_DEFAULT_LOCALE must name a language the emails exist in; it is matched like a customer's."""
    with pytest.raises(ConfigError, match=r"^GATEWAY_DEFAULT_LOCALE: no email catalog for 'sw'"):
        build_gateway(Settings(database_url=f"sqlite:///{tmp_path / 'g.sqlite3'}", default_locale="sw"))
    gateway = build_gateway(Settings(database_url=f"sqlite:///{tmp_path / 'g.sqlite3'}", default_locale="de-CH"))
    assert "de" == gateway.renderer.default_locale


def test_smtp_limits_have_defaults_and_are_read_from_variables() -> None:
    """The per-client limits and the memory budget default to values that keep one client from starving the rest,
    and each is a GATEWAY_SMTP_* variable."""
    defaults = load_settings({})
    assert (50, 3600, 200, 100, 10, 1.0, 200 * 1024 * 1024) == (
        defaults.smtp_max_connections_per_peer, defaults.smtp_max_session_seconds,
        defaults.smtp_max_commands_per_message, defaults.smtp_max_recipients, defaults.smtp_max_failures,
        defaults.smtp_failure_delay_seconds, defaults.smtp_max_bytes_in_flight,
    )
    settings = load_settings({
        "GATEWAY_SMTP_MAX_CONNECTIONS_PER_PEER": "0", "GATEWAY_SMTP_MAX_SESSION_SECONDS": "600",
        "GATEWAY_SMTP_MAX_COMMANDS_PER_MESSAGE": "50", "GATEWAY_SMTP_MAX_RECIPIENTS": "250",
        "GATEWAY_SMTP_MAX_FAILURES": "3", "GATEWAY_SMTP_FAILURE_DELAY_SECONDS": "0.5",
        "GATEWAY_SMTP_MAX_BYTES_IN_FLIGHT": "1000000",
    })
    assert (0, 600, 50, 250, 3, 0.5, 1_000_000) == (
        settings.smtp_max_connections_per_peer, settings.smtp_max_session_seconds,
        settings.smtp_max_commands_per_message, settings.smtp_max_recipients, settings.smtp_max_failures,
        settings.smtp_failure_delay_seconds, settings.smtp_max_bytes_in_flight,
    )
    with pytest.raises(ConfigError, match="GATEWAY_SMTP_MAX_RECIPIENTS"):
        load_settings({"GATEWAY_SMTP_MAX_RECIPIENTS": "0"})
