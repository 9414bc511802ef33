"""``web2chat-gateway``: run the gateway or its parts, migrate, list the outbox, parse an email."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from gateway.errors import ConfigError
from gateway.settings import Settings, load_settings

if TYPE_CHECKING:
    from gateway.store import Database

__all__ = ["build_parser", "main"]

T = TypeVar("T")


def _settings(environ: Mapping[str, str]) -> Settings:
    try:
        return load_settings(environ)
    except ConfigError as exc:
        raise SystemExit(f"web2chat-gateway: configuration error: {exc}") from None


def _run(settings: Settings, parts: Sequence[str]) -> int:
    """Run ``parts`` until SIGTERM or SIGINT, then stop them gracefully; exit 0 when every part stopped
    cleanly. A second signal during the stop ends the process at once (the signal's default action)."""
    from gateway.app import build_gateway
    from gateway.errors import CannotListen
    from gateway.logs import configure
    from gateway.malloc import fix_mmap_threshold
    from gateway.run import Parts

    configure(level=settings.log_level, fmt=settings.log_format)
    fix_mmap_threshold()  # large messages' buffers go back to the system once freed

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        for handled in (signal.SIGTERM, signal.SIGINT):
            signal.signal(handled, signal.SIG_DFL)
        stop.set()

    for handled in (signal.SIGTERM, signal.SIGINT):
        signal.signal(handled, on_signal)
    gw = build_gateway(settings)
    running = Parts(gw, parts)
    try:
        running.start()
    except CannotListen as exc:
        raise SystemExit(f"web2chat-gateway: {exc}") from None
    if settings.metrics_port is not None and "api" not in parts:
        _serve_metrics(settings.metrics_host, settings.metrics_port)
    for line in running.where():
        print(line, flush=True)
    if "api" in parts and not settings.api_keys:
        print(f"api key {gw.api_keys[0]}  (generated; set GATEWAY_API_KEYS to choose your own)", flush=True)
    stop.wait()
    failed = running.stop()
    return 1 if failed else 0


def _serve_metrics(host: str, port: int) -> None:
    """This process's metrics on ``http://host:port/metrics`` (the smtp and worker processes; the API
    serves its own at /metrics)."""
    from prometheus_client import start_http_server

    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        raise SystemExit(f"web2chat-gateway: GATEWAY_METRICS_PORT {port} on {host}: {exc.strerror}") from None
    print(f"metrics http://{host}:{port}/metrics", flush=True)


def _migrate(settings: Settings) -> int:
    from gateway.store import make_engine, migrate, pending_migrations

    engine = make_engine(settings.database_url)
    pending = pending_migrations(engine)
    migrate(engine)
    print(f"applied {len(pending)} migration(s): {', '.join(pending) or 'none, already current'}")
    return 0


def _read(settings: Settings, read: Callable[[Database], T]) -> T:
    """``read(db)`` on the store alone, for the commands that only read it (importing the whole gateway
    takes seconds). An embedded SQLite whose schema is missing or behind is migrated, as ``build_gateway``
    does, and read again; any other store that cannot be read stops the command with one line."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from gateway.store import Database, migrate

    db = Database.from_url(settings.database_url)
    try:
        try:
            return read(db)
        except OperationalError:
            if not db.sqlite:
                raise
        migrate(db.engine)
        return read(db)
    except (OperationalError, ProgrammingError) as exc:
        raise SystemExit(
            f"web2chat-gateway: cannot read the store: {str(exc.orig).strip().splitlines()[0]}"
            " (is GATEWAY_DATABASE_URL right, and the schema current? web2chat-gateway migrate)"
        ) from None
    finally:
        db.dispose()


def _with_ledgers(outbox: Any, limit: int) -> tuple[list[Any], dict[int, list[Any]]]:
    emails = outbox.recent(limit=limit)
    return emails, outbox.ledgers([e.pk for e in emails])


def _outbox(settings: Settings, *, as_json: bool, limit: int) -> int:
    from outbound.outbox import OutboxStore

    emails, ledgers = _read(settings, lambda db: _with_ledgers(OutboxStore(db), limit))
    if as_json:
        from gateway.api.responses import OutboxEmailOut

        print(json.dumps([OutboxEmailOut.of(e, ledgers[e.pk]).model_dump(mode="json", by_alias=True)
                          for e in emails], indent=2))
        return 0
    if not emails:
        print("the outbox is empty")
        return 0
    print(f"{'id':>6}  {'created (UTC)':<19}  {'status':<10} {'tries':>5}  {'to':<30}  {'last event':<11} subject")
    for e in emails:
        when = f"{e.created_at:%Y-%m-%d %H:%M:%S}"
        last = ledgers[e.pk][-1].kind.value if ledgers[e.pk] else "queued"
        print(f"{e.pk:>6}  {when}  {e.status.value:<10} {e.attempts:>5}  {e.to:<30}  {last:<11} {e.subject}")
    return 0


def _quarantine(settings: Settings, action: str, pk: int | None, *, as_json: bool) -> int:
    from inbound.inbox import InboundStore

    if action == "list":
        held = _read(settings, lambda db: InboundStore(db).quarantined(limit=200))
        if as_json:
            from gateway.api.responses import InboundMessageOut

            print(json.dumps([InboundMessageOut.of(m).model_dump(mode="json", by_alias=True) for m in held], indent=2))
            return 0
        if not held:
            print("the quarantine is empty")
            return 0
        print(f"{'id':>6}  {'received (UTC)':<19}  {'from':<30}  subject")
        print(f"{'':>6}  why it is held")
        for m in held:
            print(f"{m.pk:>6}  {m.received_at:%Y-%m-%d %H:%M:%S}  {m.from_addr or '?':<30}  {m.subject or ''}")
            print(f"{'':>6}  {m.detail}")
        return 0
    if pk is None:
        raise SystemExit(f"web2chat-gateway: quarantine {action} needs a message id")
    message = _read(settings, lambda db: InboundStore(db).get(pk))
    if message is None or message.status != "quarantined":
        print(f"web2chat-gateway: no quarantined message {pk}", file=sys.stderr)
        return 1
    if action == "show":
        from gateway.api.responses import QuarantinedMessageOut

        shown = QuarantinedMessageOut.of(message).model_dump(mode="json", by_alias=True)
        print(json.dumps(shown, indent=2, ensure_ascii=False))
        return 0
    from gateway.app import build_gateway  # the release hands the message to the pipeline's job

    gw = build_gateway(settings)
    gw.inbound.release(pk, now=gw.clock())
    print(f"released inbound message {pk}: it goes through the pipeline again, without the sender check")
    return 0


def _doctor(settings: Settings) -> int:
    from gateway.doctor import diagnose

    findings = diagnose(settings)
    for finding in findings:
        print(("ok       " if finding.ok else "PROBLEM  ") + finding.line)
    return 0 if all(f.ok for f in findings) else 1


def _webhook_statuses() -> list[Any]:
    from gateway.models import WebhookStatus

    return list(WebhookStatus)


def _webhooks(settings: Settings, action: str, pk: int | None, *, status: str | None, as_json: bool) -> int:
    from gateway.api.webhooks import webhook_out
    from gateway.app import build_gateway
    from gateway.models import WebhookStatus

    gw = build_gateway(settings)
    if action == "list":
        calls = gw.webhooks.recent(status=WebhookStatus(status) if status else None, limit=200)
        if as_json:
            print(json.dumps([webhook_out(c).model_dump(mode="json") for c in calls], indent=2))
            return 0
        if not calls:
            print("no webhook calls" + (f" in state {status}" if status else ""))
            return 0
        print(f"{'id':>6}  {'status':<10} {'tries':>5}  {'entry':>6}  last error")
        for c in calls:
            print(f"{c.pk:>6}  {c.status.value:<10} {c.attempts:>5}  {c.entry_pk:>6}  {c.last_error or ''}")
        return 0
    if pk is None:
        raise SystemExit("web2chat-gateway: webhooks replay needs a webhook call id")
    if not gw.webhooks.replay(pk, now=gw.clock()):
        print(f"web2chat-gateway: no failed webhook call {pk}", file=sys.stderr)
        return 1
    print(f"webhook call {pk} queued again: the worker sends it within seconds")
    return 0


def _parse(path: str, *, mail_from: str | None, rcpt_to: Sequence[str], environ: Mapping[str, str]) -> int:
    from inbound.bounce_report import read_bounce
    from inbound.extract import extract_reply
    from inbound.pipeline import preview

    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise SystemExit(f"web2chat-gateway: cannot read {path}: {exc.strerror}") from None
    result = preview(raw, extract_reply, mail_from=mail_from)
    report = read_bounce(raw)
    result["bounce"] = {
        "kind": report.kind.value,
        "recognised_by": report.how or None,
        "failed": [{"address": r.address, "kind": r.kind.value, "status": r.status or None,
                    "diagnostic": r.diagnostic or None} for r in report.recipients],
        "decision": _bounce_decision(report, rcpt_to, environ) if rcpt_to else (
            "without --rcpt-to: a bounce at a reply address (or over HTTP without one) is recorded and "
            "suppresses nobody; only one at an email's own bounce address can count against its recipient"),
    }
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0 if result["ok"] else 1


def _bounce_decision(report: Any, rcpt_to: Sequence[str], environ: Mapping[str, str]) -> str:
    """What the SMTP path would decide for ``report`` sent to ``rcpt_to`` (reads the store, changes nothing)."""
    from gateway.app import build_gateway
    from outbound.bounces import believe

    gw = build_gateway(_settings(environ))
    for address in rcpt_to:
        if gw.recipients.refusal(address) is not None:
            return f"<{address}> would be refused at RCPT with 550 5.1.1 (not a valid address of this gateway)"
    email_key = next((k for k in map(gw.recipients.email_for_bounce, rcpt_to) if k is not None), None)
    if email_key is None:
        return "sent to a reply address: recorded as a bounce, kept off the ticket, suppresses nobody"
    email = gw.outbox.get(email_key)
    if email is None:
        return f"names email {email_key}, which does not exist: not believed"
    failed, why = believe(report, recipient=email.to)
    if failed is None:
        return f"email {email_key} to {email.to}: {why}"
    points = {"hard": "suppresses it", "complaint": "suppresses it", "soft": "adds a soft point"}[failed.kind.value]
    return f"email {email_key} to {email.to}: {why}; {points}"


def _suppressions(settings: Settings, action: str, address: str | None, *, as_json: bool) -> int:
    from gateway.api.suppressions import suppression_out
    from gateway.app import build_gateway

    gw = build_gateway(settings)
    if action == "list":
        found = gw.delivery.suppressions(limit=500)
        if as_json:
            print(json.dumps([suppression_out(s).model_dump(mode="json") for s in found], indent=2))
        elif not found:
            print("no address is suppressed")
        else:
            print(f"{'address':<40} {'since':<19}  {'kind':<9} reason")
            for s in found:
                print(f"{s.address:<40} {s.since:%Y-%m-%d %H:%M:%S}  {s.kind or '-':<9} {s.reason}")
        return 0
    if not address:
        raise SystemExit(f"web2chat-gateway: suppressions {action} needs an address")
    if action == "show":
        one = gw.delivery.suppression(address)
        if one is None:
            print(f"web2chat-gateway: {address} is not suppressed", file=sys.stderr)
            return 1
        print(json.dumps(suppression_out(one).model_dump(mode="json"), indent=2, ensure_ascii=False))
        return 0
    if not gw.delivery.lift(address):
        print(f"web2chat-gateway: {address} is not suppressed", file=sys.stderr)
        return 1
    print(f"lifted: {address} is emailed again (its bounce score is forgotten)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Every command, each with a one-line summary (the list in ``--help``) and a description of its own."""
    import gateway

    parser = argparse.ArgumentParser(
        prog="web2chat-gateway",
        description="Web2Chat email gateway: ticket notifications out by email, customer replies in. Settings "
        "come from GATEWAY_* environment variables (docs/configuration.md).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {gateway.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=summary, description=f"{summary[0].upper()}{summary[1:]}. {description}")

    stops = "Stops gracefully on SIGTERM or SIGINT (exit 0); a second signal stops at once."
    command("serve", "run everything in one process: API, SMTP server and worker",
            f"The embedded mode: SQLite is migrated at start, jobs stay in process unless GATEWAY_REDIS_URL is set. "
            f"{stops}")
    command("api", "run only the HTTP API", f"Listens on GATEWAY_API_HOST:GATEWAY_API_PORT. {stops}")
    command("smtp", "run only the inbound SMTP server", f"Listens on GATEWAY_SMTP_HOST:GATEWAY_SMTP_PORT. {stops}")
    command("worker", "run only the worker (delivery, inbound pipeline, sweeper)",
            f"Takes jobs from the broker (GATEWAY_REDIS_URL) and sweeps the store for due work. {stops}")
    command("migrate", "bring the database schema up to date",
            "Applies the migrations the store lacks and names them; safe to run again.")
    outbox = command("outbox", "list outbound emails, newest first",
                     "One line per email: id, when it was queued, status, delivery attempts, recipient, subject.")
    outbox.add_argument("--json", action="store_true", help="print JSON, with each email's full source")
    outbox.add_argument("--limit", type=int, default=50, metavar="N", help="how many emails to list (default 50)")
    quarantine = command("quarantine", "list, show or release quarantined inbound messages",
                         "Messages held because the sender is not the ticket's customer, or DMARC failed. "
                         "A released message goes through the pipeline again, without the sender check.")
    quarantine.add_argument("action", choices=("list", "show", "release"), help="what to do")
    quarantine.add_argument("id", nargs="?", type=int, help="the inbound message id (show, release)")
    quarantine.add_argument("--json", action="store_true", help="print JSON")
    hooks = command("webhooks", "list the help-desk webhook calls, or replay a failed one",
                    "A failed call (given up after its last attempt) is sent again with a fresh set of attempts.")
    hooks.add_argument("action", choices=("list", "replay"), help="what to do")
    hooks.add_argument("id", nargs="?", type=int, help="the webhook call id (replay)")
    hooks.add_argument("--status", choices=[s.value for s in _webhook_statuses()], help="only calls in this state")
    hooks.add_argument("--json", action="store_true", help="print JSON")
    command("doctor", "check the configuration: store, broker, relay, secrets, reply domain, webhook",
            "Connects to each (the relay gets EHLO, STARTTLS and AUTH as configured, then QUIT: nothing is sent) "
            "and prints one line per check; exits 1 when any line is a problem, saying what to set.")
    parse = command("parse", "show what the inbound pipeline would make of a raw email",
                    "Prints JSON: the kind of message, its threading headers, the reply text and the rule that "
                    "cut the quote, and for a bounce its kind, failed recipients and status. Reads no settings "
                    "and touches no store, unless --rcpt-to asks for the SMTP path's decision.")
    parse.add_argument("file", help="a raw RFC 5322 email, or - for stdin")
    parse.add_argument("--mail-from", metavar="ADDR", help="the envelope sender it came with ('<>' for a bounce)")
    parse.add_argument("--rcpt-to", action="append", default=[], metavar="ADDR",
                       help="an envelope recipient: shows the decision the SMTP path takes (reads the store)")
    suppressions = command("suppressions", "list, show or lift suppressed addresses",
                           "Addresses not emailed after hard bounces, complaints, soft bounces that added up or "
                           "the relay's refusal, each with its evidence. Lifting one emails it again and forgets "
                           "its score.")
    suppressions.add_argument("action", choices=("list", "show", "lift"), help="what to do")
    suppressions.add_argument("address", nargs="?", help="the address (show, lift)")
    suppressions.add_argument("--json", action="store_true", help="print JSON")
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Entry point of the ``web2chat-gateway`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    env = os.environ if environ is None else environ

    if args.command == "parse":
        return _parse(args.file, mail_from=args.mail_from, rcpt_to=args.rcpt_to, environ=env)
    settings = _settings(env)
    if args.command == "migrate":
        return _migrate(settings)
    if args.command == "doctor":
        return _doctor(settings)
    if args.command == "quarantine":
        return _quarantine(settings, args.action, args.id, as_json=args.json)
    if args.command == "suppressions":
        return _suppressions(settings, args.action, args.address, as_json=args.json)
    if args.command == "webhooks":
        return _webhooks(settings, args.action, args.id, status=args.status, as_json=args.json)
    if args.command == "outbox":
        return _outbox(settings, as_json=args.json, limit=args.limit)
    parts = {"serve": ("api", "smtp", "worker")}.get(args.command, (args.command,))
    return _run(settings, parts)


if __name__ == "__main__":
    raise SystemExit(main())
