"""``web2chat-gateway``: run the gateway or its parts, migrate, list the outbox, parse an email."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError
from gateway.settings import Settings, load_settings

__all__ = ["main"]


def _settings(environ: Mapping[str, str]) -> Settings:
    try:
        return load_settings(environ)
    except ConfigError as exc:
        raise SystemExit(f"web2chat-gateway: configuration error: {exc}") from None


def _run(settings: Settings, parts: Sequence[str]) -> int:
    from gateway.app import build_gateway
    from gateway.run import Parts

    gw = build_gateway(settings)
    running = Parts(gw, parts)
    running.start(api_in_thread=False)
    for line in running.where():
        print(line, flush=True)
    if "api" in parts and not settings.api_keys:
        print(f"api key {gw.api_keys[0]}  (generated; set GATEWAY_API_KEYS to choose your own)", flush=True)
    try:
        if "api" in parts:
            running.run_api()  # returns on Ctrl-C / SIGTERM (uvicorn handles both)
        else:
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            stop.wait()
    finally:
        running.stop()
    return 0


def _migrate(settings: Settings) -> int:
    from gateway.store import make_engine, migrate, pending_migrations

    engine = make_engine(settings.database_url)
    pending = pending_migrations(engine)
    migrate(engine)
    print(f"applied {len(pending)} migration(s): {', '.join(pending) or 'none, already current'}")
    return 0


def _outbox(settings: Settings, *, as_json: bool, limit: int) -> int:
    from gateway.api.responses import OutboxEmailOut
    from gateway.app import build_gateway

    gw = build_gateway(settings)
    emails = gw.outbox.recent(limit=limit)
    if as_json:
        ledgers = gw.outbox.ledgers([e.pk for e in emails])
        print(json.dumps([OutboxEmailOut.of(e, ledgers[e.pk]).model_dump(mode="json", by_alias=True)
                          for e in emails], indent=2))
        return 0
    if not emails:
        print("the outbox is empty")
    for e in emails:
        when = f"{e.created_at:%Y-%m-%d %H:%M:%S}"
        print(f"{e.pk:>6}  {when}  {e.status.value:<10} {e.attempts:>2}  {e.to:<30}  {e.subject}")
    return 0


def _quarantine(settings: Settings, action: str, pk: int | None, *, as_json: bool) -> int:
    from gateway.api.responses import InboundMessageOut, QuarantinedMessageOut
    from gateway.app import build_gateway

    gw = build_gateway(settings)
    if action == "list":
        held = gw.inbound.quarantined(limit=200)
        if as_json:
            print(json.dumps([InboundMessageOut.of(m).model_dump(mode="json", by_alias=True) for m in held], indent=2))
        elif not held:
            print("the quarantine is empty")
        for m in held:
            print(f"{m.pk:>6}  {m.received_at:%Y-%m-%d %H:%M:%S}  {m.from_addr or '?':<30}  {m.subject or ''}")
            print(f"        {m.detail}")
        return 0
    if pk is None:
        raise SystemExit(f"web2chat-gateway: quarantine {action} needs a message id")
    message = gw.inbound.get(pk)
    if message is None or message.status != "quarantined":
        print(f"web2chat-gateway: no quarantined message {pk}", file=sys.stderr)
        return 1
    if action == "show":
        shown = QuarantinedMessageOut.of(message).model_dump(mode="json", by_alias=True)
        print(json.dumps(shown, indent=2, ensure_ascii=False))
        return 0
    gw.inbound.release(pk, now=gw.clock())
    print(f"released inbound message {pk}: it goes through the pipeline again, without the sender check")
    return 0


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
            print(f"{c.pk:>6}  {c.status.value:<10} {c.attempts:>5}  {c.entry_pk or '-':>6}  {c.last_error or ''}")
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


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Entry point of the ``web2chat-gateway`` command."""
    parser = argparse.ArgumentParser(prog="web2chat-gateway", description="Web2Chat email gateway")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("serve", help="run everything in one process: API, SMTP server and worker")
    commands.add_parser("api", help="run only the HTTP API")
    commands.add_parser("smtp", help="run only the inbound SMTP server")
    commands.add_parser("worker", help="run only the worker (delivery, inbound pipeline, sweeper)")
    commands.add_parser("migrate", help="bring the database schema up to date")
    outbox = commands.add_parser("outbox", help="list outbound emails, newest first")
    outbox.add_argument("--json", action="store_true", help="print JSON, with each email's full source")
    outbox.add_argument("--limit", type=int, default=50)
    quarantine = commands.add_parser("quarantine", help="list, show or release quarantined inbound messages")
    quarantine.add_argument("action", choices=("list", "show", "release"))
    quarantine.add_argument("id", nargs="?", type=int, help="the inbound message id (show, release)")
    quarantine.add_argument("--json", action="store_true", help="print JSON")
    hooks = commands.add_parser("webhooks", help="list the help-desk webhook calls, or replay a failed one")
    hooks.add_argument("action", choices=("list", "replay"))
    hooks.add_argument("id", nargs="?", type=int, help="the webhook call id (replay)")
    hooks.add_argument("--status", choices=[s.value for s in _webhook_statuses()], help="only calls in this state")
    hooks.add_argument("--json", action="store_true", help="print JSON")
    parse = commands.add_parser("parse", help="show what the inbound pipeline would make of a raw email")
    parse.add_argument("file", help="a raw RFC 5322 email, or - for stdin")
    parse.add_argument("--mail-from", help="the envelope sender it came with ('<>' for a bounce)")
    parse.add_argument("--rcpt-to", action="append", default=[], metavar="ADDR",
                       help="an envelope recipient: shows the decision the SMTP path takes (reads the store)")
    suppressions = commands.add_parser("suppressions", help="list, show or lift suppressed addresses")
    suppressions.add_argument("action", choices=("list", "show", "lift"))
    suppressions.add_argument("address", nargs="?", help="the address (show, lift)")
    suppressions.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    env = os.environ if environ is None else environ

    if args.command == "parse":
        return _parse(args.file, mail_from=args.mail_from, rcpt_to=args.rcpt_to, environ=env)
    settings = _settings(env)
    if args.command == "migrate":
        return _migrate(settings)
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
