"""``web2chat-gateway doctor``: checks what an operator most often gets wrong, and says what to set.

Each check returns a :class:`Finding`: ``ok`` or a problem, in one line that names the setting. Nothing
is sent: the relay gets EHLO, STARTTLS and AUTH as configured, then QUIT; the webhook URL a GET.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.settings import PREFIX, Settings

__all__ = ["STRONG_SECRET_LENGTH", "Finding", "diagnose"]

#: Characters a secret should have at least (the settings refuse fewer than 16).
STRONG_SECRET_LENGTH = 32
#: Seconds each network check waits.
CHECK_TIMEOUT = 5.0
#: The reply domain a fresh install has: mail to it reaches no one.
PLACEHOLDER_DOMAIN = "reply.localhost"


@dataclass(frozen=True)
class Finding:
    """What one check found: ``ok`` or not, and one line saying it (and, for a problem, what to set)."""

    ok: bool
    line: str


def diagnose(settings: Settings) -> list[Finding]:
    """Run every check on ``settings``; a check that raises unexpectedly is a problem, never a crash."""
    checks: list[Callable[[Settings], Finding]] = [_store, _broker, _relay, _secrets, _reply_domain, _webhook]
    findings = []
    for check in checks:
        try:
            findings.append(check(settings))
        except Exception as exc:  # noqa: BLE001 - reported as a problem
            findings.append(Finding(False, f"{check.__name__.strip('_')}: the check failed: {exc}"))
    return findings


def _store(s: Settings) -> Finding:
    from gateway.store import make_engine, pending_migrations

    engine = make_engine(s.database_url)
    try:
        pending = pending_migrations(engine)
    except Exception as exc:  # noqa: BLE001 - any driver error means unreachable
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return Finding(False, f"store: cannot read it ({reason}): set {PREFIX}DATABASE_URL to a reachable database")
    finally:
        engine.dispose()
    if pending and not s.database_url.startswith("sqlite"):
        return Finding(False, f"store: {len(pending)} migration(s) not applied ({', '.join(pending)}): "
                              "run web2chat-gateway migrate")
    note = " (serve migrates this SQLite file at start)" if pending else ""
    return Finding(True, f"store: reachable, schema current{note}")


def _broker(s: Settings) -> Finding:
    if not s.redis_url:
        return Finding(True, f"broker: in process (set {PREFIX}REDIS_URL to run api, smtp and worker apart)")
    import redis

    try:
        redis.Redis.from_url(s.redis_url, socket_timeout=CHECK_TIMEOUT, socket_connect_timeout=CHECK_TIMEOUT).ping()
    except redis.RedisError as exc:
        return Finding(False, f"broker: Redis does not answer ({exc}): check {PREFIX}REDIS_URL")
    return Finding(True, "broker: Redis answers")


def _relay(s: Settings) -> Finding:
    from gateway.errors import DeliveryError
    from outbound.send import RelaySender, sender_from_url

    sender = sender_from_url(s.smtp_relay_url)
    if not isinstance(sender, RelaySender):
        return Finding(False, f"relay: none, emails stay in the outbox: set {PREFIX}SMTP_RELAY_URL "
                              "(smtp://user:password@host:587)")
    try:
        sender.check()
    except DeliveryError as exc:
        return Finding(False, f"relay: {exc}: check {PREFIX}SMTP_RELAY_URL")
    return Finding(True, f"relay: {sender.where} accepts the connection (EHLO, TLS and login as configured)")


def _secrets(s: Settings) -> Finding:
    weak = []
    if any(len(secret) < STRONG_SECRET_LENGTH for _, secret in s.secret_keys):
        weak.append(f"{PREFIX}SECRET_KEYS")
    for name, value in (("HELPDESK_WEBHOOK_SECRET", s.helpdesk_webhook_secret),
                        ("MESSENGER_SECRET", s.messenger_secret)):
        if value is not None and len(value) < STRONG_SECRET_LENGTH:
            weak.append(PREFIX + name)
    if any(len(key) < STRONG_SECRET_LENGTH for key in s.api_keys):
        weak.append(f"{PREFIX}API_KEYS")
    if weak:
        return Finding(False, f"secrets: shorter than {STRONG_SECRET_LENGTH} characters: {', '.join(weak)} "
                              "(make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))')")
    generated = [name for name, value in (("SECRET_KEYS", s.secret_keys), ("API_KEYS", s.api_keys),
                                          ("MESSENGER_SECRET", s.messenger_secret)) if not value]
    note = f" ({', '.join(PREFIX + n for n in generated)} generated and kept in the store)" if generated else ""
    return Finding(True, f"secrets: strong{note}")


#: Seconds a DNS look-up of the reply domain's MX may take.
DNS_TIMEOUT = 3.0


def mx_hosts(domain: str, *, timeout: float = DNS_TIMEOUT) -> tuple[str, ...] | str:
    """The MX hosts of ``domain`` (lowest preference first), or why they could not be looked up."""
    import dns.exception
    import dns.resolver

    try:
        answer = dns.resolver.resolve(domain, "MX", lifetime=timeout)
    except dns.resolver.NXDOMAIN:
        return f"{domain} does not exist in DNS"
    except dns.resolver.NoAnswer:
        return f"{domain} has no MX record"
    except (dns.exception.DNSException, OSError) as exc:
        return f"cannot check (DNS not reachable from here: {type(exc).__name__})"
    records = sorted(answer, key=lambda r: r.preference)
    return tuple(str(r.exchange).rstrip(".") for r in records)


def _reply_domain(s: Settings, *, lookup: Callable[[str], tuple[str, ...] | str] | None = None) -> Finding:
    if s.reply_domain == PLACEHOLDER_DOMAIN:
        return Finding(False, f"reply domain: {PLACEHOLDER_DOMAIN} reaches no one: set {PREFIX}REPLY_DOMAIN to "
                              "a domain whose MX points at this gateway")
    hosts = (lookup or mx_hosts)(s.reply_domain)
    if isinstance(hosts, str):
        if hosts.startswith("cannot check"):
            return Finding(True, f"reply domain: {s.reply_domain}: MX {hosts}; `dig MX {s.reply_domain}` should "
                                 "name this gateway or the MTA in front of it")
        return Finding(False, f"reply domain: {hosts}: replies and bounces cannot reach the gateway; give "
                              f"{s.reply_domain} an MX record naming this gateway (or the MTA in front of it)")
    return Finding(True, f"reply domain: {s.reply_domain}: MX {', '.join(hosts)} (replies and bounces go there: "
                         "it must be this gateway or an MTA relaying the domain to it)")


def _webhook(s: Settings) -> Finding:
    if not s.helpdesk_webhook_url:
        return Finding(True, f"webhook: none (set {PREFIX}HELPDESK_WEBHOOK_URL for replies to reach the help desk)")
    import urllib3

    try:
        answer = urllib3.request("GET", s.helpdesk_webhook_url, timeout=CHECK_TIMEOUT, retries=False, redirect=False)
    except (OSError, urllib3.exceptions.HTTPError) as exc:
        return Finding(False, f"webhook: {s.helpdesk_webhook_url} does not answer ({exc}): "
                              f"check {PREFIX}HELPDESK_WEBHOOK_URL")
    return Finding(True, f"webhook: {s.helpdesk_webhook_url} answers (HTTP {answer.status} to a GET)")
