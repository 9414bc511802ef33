"""Gateway settings, read once from ``GATEWAY_*`` environment variables.

Only the composition root calls :func:`load_settings`; everything else receives the frozen
:class:`Settings` (or the single values it needs) by keyword.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from gateway.errors import ConfigError

__all__ = ["PREFIX", "Settings", "load_settings", "parse_secret_keys"]

#: Every variable the gateway reads starts with this.
PREFIX = "GATEWAY_"
#: SQLite file in the working directory: the embedded default store.
DEFAULT_DATABASE_URL = "sqlite:///web2chat-gateway.sqlite3"
#: Where the HTTP API listens by default (loopback only).
DEFAULT_API_HOST, DEFAULT_API_PORT = "127.0.0.1", 8025
#: Where the inbound SMTP server listens by default (loopback only).
DEFAULT_SMTP_HOST, DEFAULT_SMTP_PORT = "127.0.0.1", 2525
#: How long a teammate reply may stay unseen in the Messenger before it is emailed.
DEFAULT_UNSEEN_DELAY_SECONDS = 180
#: The longest any reply waits for its email while the teammate keeps replying.
DEFAULT_UNSEEN_MAX_WAIT_SECONDS = 600
#: Largest inbound message accepted (advertised with the SMTP SIZE extension).
DEFAULT_MAX_MESSAGE_BYTES = 25 * 1024 * 1024
#: The most landed replies one webhook call may carry (``GATEWAY_WEBHOOK_BATCH``).
MAX_WEBHOOK_BATCH = 100
#: Inbound SMTP connections served at once; more get 421.
DEFAULT_MAX_CONNECTIONS = 500
#: Seconds an inbound SMTP client may stay silent between commands.
DEFAULT_SMTP_IDLE_TIMEOUT_SECONDS = 300
#: Seconds an inbound SMTP client has to send a whole message after DATA.
DEFAULT_SMTP_DATA_TIMEOUT_SECONDS = 600
#: Inbound SMTP connections one peer address may hold at once (a tenth of the slots); 0: no per-peer cap.
DEFAULT_SMTP_MAX_CONNECTIONS_PER_PEER = 50
#: Seconds an inbound SMTP session may last, however busy; then 421 4.7.0 and closed (after a DATA in progress).
DEFAULT_SMTP_MAX_SESSION_SECONDS = 3600
#: Commands a session may send per message it delivers (the count restarts at each DATA answer).
DEFAULT_SMTP_MAX_COMMANDS_PER_MESSAGE = 200
#: Recipients of one message (RFC 5321 4.5.3.1.8: at least 100); more get 452 4.5.3.
DEFAULT_SMTP_MAX_RECIPIENTS = 100
#: Refused commands (5xx) a session may have before each further refusal is delayed; twice as many: 421, closed.
DEFAULT_SMTP_MAX_FAILURES = 10
#: Seconds each refusal beyond ``DEFAULT_SMTP_MAX_FAILURES`` is delayed.
DEFAULT_SMTP_FAILURE_DELAY_SECONDS = 1.0
#: Bytes of inbound messages being received or stored at once, all sessions together; beyond: 452 4.3.1.
DEFAULT_SMTP_MAX_BYTES_IN_FLIGHT = 200 * 1024 * 1024
#: Seconds between each API process's fallback polls of the Messenger changes log.
DEFAULT_MESSENGER_POLL_SECONDS = 1.0
#: Points a soft bounce adds to its address's score, and a hard bounce.
DEFAULT_BOUNCE_SOFT_POINTS, DEFAULT_BOUNCE_HARD_POINTS = 1, 4
#: Score at which an address is suppressed (a complaint suppresses at once).
DEFAULT_BOUNCE_SUPPRESS_AT = 4
#: Days after which an address's bounce points are forgotten.
DEFAULT_BOUNCE_FORGET_DAYS = 30
#: The language of emails to customers whose own locale is unknown or has no catalog.
DEFAULT_LOCALE = "en"
#: Entries of the conversation so far shown below a reply or state-change email's news (0: none).
DEFAULT_HISTORY_MAX_ENTRIES = 5
#: Characters of entry text that conversation may take (the entry crossing it is cut).
DEFAULT_HISTORY_MAX_CHARS = 2000
#: Shortest secret accepted for signing reply tokens.
MIN_SECRET_LENGTH = 16

_LOCALE_TAG = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
_KEY_ID = re.compile(r"^\d{1,3}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the gateway can be configured with; see docs/configuration.md."""

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    smtp_relay_url: str | None = None
    reply_domain: str = "reply.localhost"
    from_address: str = "Web2Chat Support <support@localhost>"
    #: Reply-token keys, newest (signing) first: ``{key_id: secret}``. Empty: generated and
    #: kept in the store on first start.
    secret_keys: tuple[tuple[int, bytes], ...] = ()
    #: Help-desk API keys. Empty: one is generated, kept in the store and printed at start.
    api_keys: tuple[str, ...] = ()
    api_host: str = DEFAULT_API_HOST
    api_port: int = DEFAULT_API_PORT
    smtp_host: str = DEFAULT_SMTP_HOST
    smtp_port: int = DEFAULT_SMTP_PORT
    #: The name the SMTP server gives in its greeting and EHLO answer. None: the machine's FQDN.
    smtp_hostname: str | None = None
    log_level: str = "info"
    log_format: str = "console"
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    unseen_delay_seconds: int = DEFAULT_UNSEEN_DELAY_SECONDS
    unseen_max_wait_seconds: int = DEFAULT_UNSEEN_MAX_WAIT_SECONDS
    bounce_soft_points: int = DEFAULT_BOUNCE_SOFT_POINTS
    bounce_hard_points: int = DEFAULT_BOUNCE_HARD_POINTS
    bounce_suppress_at: int = DEFAULT_BOUNCE_SUPPRESS_AT
    bounce_forget_days: int = DEFAULT_BOUNCE_FORGET_DAYS
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    messenger_url: str = "http://127.0.0.1:8025/demo"
    product_name: str = "Web2Chat"
    brand_color: str = "#3b5bdb"
    logo_url: str | None = None
    footer_address: str = ""
    helpdesk_webhook_url: str | None = None
    #: Webhook calls one worker process posts at once (on kept-alive connections).
    webhook_concurrency: int = 8
    #: Landed replies one webhook call carries (1: one reply per call; more: the batch format, see
    #: ``inbound.webhook``), for help desks that accept batches.
    webhook_batch: int = 1
    worker_threads: int = 8
    #: Processes that prepare inbound messages beside each worker process (None: one per core but
    #: one, at most 4; 0: the worker's threads prepare them).
    pipeline_processes: int | None = None
    #: Inbound SMTP: connection cap, timeouts, STARTTLS, LMTP, SO_REUSEPORT.
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    smtp_idle_timeout_seconds: int = DEFAULT_SMTP_IDLE_TIMEOUT_SECONDS
    smtp_data_timeout_seconds: int = DEFAULT_SMTP_DATA_TIMEOUT_SECONDS
    #: Inbound SMTP: per-client limits and the memory budget (see docs/operations.md).
    smtp_max_connections_per_peer: int = DEFAULT_SMTP_MAX_CONNECTIONS_PER_PEER
    smtp_max_session_seconds: int = DEFAULT_SMTP_MAX_SESSION_SECONDS
    smtp_max_commands_per_message: int = DEFAULT_SMTP_MAX_COMMANDS_PER_MESSAGE
    smtp_max_recipients: int = DEFAULT_SMTP_MAX_RECIPIENTS
    smtp_max_failures: int = DEFAULT_SMTP_MAX_FAILURES
    smtp_failure_delay_seconds: float = DEFAULT_SMTP_FAILURE_DELAY_SECONDS
    smtp_max_bytes_in_flight: int = DEFAULT_SMTP_MAX_BYTES_IN_FLIGHT
    smtp_tls_cert: str | None = None
    smtp_tls_key: str | None = None
    smtp_lmtp: bool = False
    smtp_processes: int = 1
    #: ``Authentication-Results`` from this authserv-id are trusted (a DMARC fail quarantines).
    trusted_authserv_id: str | None = None
    #: Key of the HMAC-SHA256 signature on help-desk webhook calls.
    helpdesk_webhook_secret: str | None = None
    #: Signs Messenger keys. None: one is generated and kept in the store on first start.
    messenger_secret: str | None = None
    messenger_poll_seconds: float = DEFAULT_MESSENGER_POLL_SECONDS
    #: Emails' language when the customer's is unknown: a locale with a catalog (``de``, ``pt-BR``).
    default_locale: str = DEFAULT_LOCALE
    #: The conversation so far in reply and state-change emails: at most this many entries and characters.
    history_max_entries: int = DEFAULT_HISTORY_MAX_ENTRIES
    history_max_chars: int = DEFAULT_HISTORY_MAX_CHARS


def parse_secret_keys(value: str) -> tuple[tuple[int, bytes], ...]:
    """Parse ``"2:newsecret,1:oldsecret"`` into ``((2, b"newsecret"), (1, b"oldsecret"))``."""
    keys: list[tuple[int, bytes]] = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        kid, sep, secret = item.partition(":")
        if not sep or not _KEY_ID.match(kid) or int(kid) > 255:
            raise ValueError(f"expected 'id:secret' with an id from 0 to 255, got {item[:8]!r}...")
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"secret for key id {kid} is shorter than {MIN_SECRET_LENGTH} characters")
        if any(existing == int(kid) for existing, _ in keys):
            raise ValueError(f"key id {kid} appears twice")
        keys.append((int(kid), secret.encode()))
    if not keys:
        raise ValueError("no keys given")
    return tuple(keys)


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range: {port}")
    return port


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError(f"must not be negative: {number}")
    return number


def _positive(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError(f"must be positive: {number}")
    return number


def _at_most(most: int) -> Callable[[str], int]:
    def check(value: str) -> int:
        number = _positive(value)
        if number > most:
            raise ValueError(f"must be at most {most}: {number}")
        return number

    return check


def _database_url(value: str) -> str:
    scheme = urlsplit(value).scheme
    if not (scheme.startswith("sqlite") or scheme.startswith("postgresql")):
        raise ValueError(f"expected a sqlite:/// or postgresql:// URL, got scheme {scheme!r}")
    return value


def _url(*schemes: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.hostname:
            raise ValueError(f"expected a {' or '.join(s + '://' for s in schemes)} URL with a host")
        parts.port  # noqa: B018 - raises ValueError on a bad port
        return value

    return check


def _one_of(*choices: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value.strip().lower() not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return value.strip().lower()

    return check


def _domain(value: str) -> str:
    domain = value.strip().lower()
    if not _DOMAIN.match(domain):
        raise ValueError(f"not a domain name: {value!r}")
    return domain


def _address(value: str) -> str:
    if "@" not in value or "\r" in value or "\n" in value:
        raise ValueError(f"not an email address: {value!r}")
    return value.strip()


def _api_keys(value: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in value.split(",") if k.strip())
    if not keys:
        raise ValueError("no keys given")
    short = [k for k in keys if len(k) < MIN_SECRET_LENGTH]
    if short:
        raise ValueError(f"every API key needs at least {MIN_SECRET_LENGTH} characters")
    return keys


def _secret(value: str) -> str:
    if len(value) < MIN_SECRET_LENGTH:
        raise ValueError(f"must have at least {MIN_SECRET_LENGTH} characters")
    return value


def _seconds(value: str) -> float:
    number = float(value)
    if not 0 < number <= 3600:
        raise ValueError(f"expected seconds between 0 and 3600, got {number}")
    return number


def _locale_tag(value: str) -> str:
    if not _LOCALE_TAG.match(value):
        raise ValueError(f"expected a locale like en, de or pt-BR, got {value!r}")
    return value


def _colour(value: str) -> str:
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
        raise ValueError(f"expected a colour like #3b5bdb, got {value!r}")
    return value


def _bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _check_together(settings: Settings) -> Settings:
    if bool(settings.smtp_tls_cert) != bool(settings.smtp_tls_key):
        raise ConfigError(f"{PREFIX}SMTP_TLS_CERT and {PREFIX}SMTP_TLS_KEY: set both for STARTTLS, or neither")
    if settings.helpdesk_webhook_url and not settings.helpdesk_webhook_secret:
        raise ConfigError(f"{PREFIX}HELPDESK_WEBHOOK_SECRET: required when {PREFIX}HELPDESK_WEBHOOK_URL is set")
    return settings


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build :class:`Settings` from ``environ``; raise :class:`ConfigError` naming a bad variable."""

    def read(name: str, convert: Callable[[str], T]) -> T | None:
        raw = environ.get(PREFIX + name)
        if raw is None or raw.strip() == "":
            return None
        try:
            return convert(raw.strip())
        except ValueError as exc:
            raise ConfigError(f"{PREFIX}{name}: {exc}") from None

    values: dict[str, object] = {
        "database_url": read("DATABASE_URL", _database_url),
        "redis_url": read("REDIS_URL", _url("redis", "rediss")),
        "smtp_relay_url": read("SMTP_RELAY_URL", _url("smtp", "smtps")),
        "reply_domain": read("REPLY_DOMAIN", _domain),
        "from_address": read("FROM_ADDRESS", _address),
        "secret_keys": read("SECRET_KEYS", parse_secret_keys),
        "api_keys": read("API_KEYS", _api_keys),
        "api_host": read("API_HOST", str),
        "api_port": read("API_PORT", _port),
        "smtp_host": read("SMTP_HOST", str),
        "smtp_port": read("SMTP_PORT", _port),
        "smtp_hostname": read("SMTP_HOSTNAME", _domain),
        "log_level": read("LOG_LEVEL", _one_of("debug", "info", "warning", "error")),
        "log_format": read("LOG_FORMAT", _one_of("console", "json")),
        "metrics_host": read("METRICS_HOST", str),
        "metrics_port": read("METRICS_PORT", _port),
        "unseen_delay_seconds": read("UNSEEN_DELAY_SECONDS", _non_negative),
        "unseen_max_wait_seconds": read("UNSEEN_MAX_WAIT_SECONDS", _non_negative),
        "bounce_soft_points": read("BOUNCE_SOFT_POINTS", _non_negative),
        "bounce_hard_points": read("BOUNCE_HARD_POINTS", _non_negative),
        "bounce_suppress_at": read("BOUNCE_SUPPRESS_AT", _positive),
        "bounce_forget_days": read("BOUNCE_FORGET_DAYS", _positive),
        "max_message_bytes": read("MAX_MESSAGE_BYTES", _positive),
        "messenger_url": read("MESSENGER_URL", _url("http", "https")),
        "product_name": read("PRODUCT_NAME", str),
        "brand_color": read("BRAND_COLOR", _colour),
        "logo_url": read("LOGO_URL", _url("https", "http")),
        "footer_address": read("FOOTER_ADDRESS", str),
        "helpdesk_webhook_url": read("HELPDESK_WEBHOOK_URL", _url("http", "https")),
        "webhook_concurrency": read("WEBHOOK_CONCURRENCY", _positive),
        "webhook_batch": read("WEBHOOK_BATCH", _at_most(MAX_WEBHOOK_BATCH)),
        "worker_threads": read("WORKER_THREADS", _positive),
        "pipeline_processes": read("PIPELINE_PROCESSES", _non_negative),
        "max_connections": read("MAX_CONNECTIONS", _positive),
        "smtp_idle_timeout_seconds": read("SMTP_IDLE_TIMEOUT_SECONDS", _positive),
        "smtp_data_timeout_seconds": read("SMTP_DATA_TIMEOUT_SECONDS", _positive),
        "smtp_max_connections_per_peer": read("SMTP_MAX_CONNECTIONS_PER_PEER", _non_negative),
        "smtp_max_session_seconds": read("SMTP_MAX_SESSION_SECONDS", _positive),
        "smtp_max_commands_per_message": read("SMTP_MAX_COMMANDS_PER_MESSAGE", _positive),
        "smtp_max_recipients": read("SMTP_MAX_RECIPIENTS", _positive),
        "smtp_max_failures": read("SMTP_MAX_FAILURES", _positive),
        "smtp_failure_delay_seconds": read("SMTP_FAILURE_DELAY_SECONDS", _seconds),
        "smtp_max_bytes_in_flight": read("SMTP_MAX_BYTES_IN_FLIGHT", _positive),
        "smtp_tls_cert": read("SMTP_TLS_CERT", str),
        "smtp_tls_key": read("SMTP_TLS_KEY", str),
        "smtp_lmtp": read("SMTP_LMTP", _bool),
        "smtp_processes": read("SMTP_PROCESSES", _positive),
        "trusted_authserv_id": read("TRUSTED_AUTHSERV_ID", str),
        "helpdesk_webhook_secret": read("HELPDESK_WEBHOOK_SECRET", _secret),
        "messenger_secret": read("MESSENGER_SECRET", _secret),
        "messenger_poll_seconds": read("MESSENGER_POLL_SECONDS", _seconds),
        "default_locale": read("DEFAULT_LOCALE", _locale_tag),
        "history_max_entries": read("HISTORY_MAX_ENTRIES", _non_negative),
        "history_max_chars": read("HISTORY_MAX_CHARS", _non_negative),
    }
    return _check_together(Settings(**{k: v for k, v in values.items() if v is not None}))  # type: ignore[arg-type]
