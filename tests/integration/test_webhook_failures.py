"""A help-desk webhook that keeps failing ends ``failed`` (not retried forever), is listed by the
API and the CLI, and is delivered once replayed."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import dramatiq
import pytest
from fastapi.testclient import TestClient

from gateway.api import create_api
from gateway.app import build_gateway
from gateway.cli import main
from gateway.models import WebhookStatus
from gateway.retry import RetryPolicy
from inbound.webhook import DELIVERY_HEADER, MemoryPoster, WebhookDeliverer
from tests.helpers import API_KEY, CUSTOMER, NOW, open_ticket, settings_for

SECRET = "webhook-secret-0123456789"


def test_a_webhook_that_keeps_failing_ends_failed_and_is_delivered_once_replayed(
    tmp_path: Path, stub_broker: dramatiq.Broker
) -> None:
    """Three 500s with a policy of three attempts: failed, listed, replayed (API), then delivered once;
    every attempt carries the same ``X-Web2Chat-Delivery`` key."""
    now = [NOW]
    poster = MemoryPoster(answers=[500, 500, 500])
    settings = settings_for(tmp_path, helpdesk_webhook_url="http://127.0.0.1:9/hook", helpdesk_webhook_secret=SECRET)
    gw = build_gateway(settings, broker=stub_broker, clock=lambda: now[0], webhook_poster=poster)
    deliverer = WebhookDeliverer(store=gw.webhooks, poster=poster, secret=SECRET, clock=lambda: now[0],
                                 retry_later=lambda pk, delay: None, jitter=lambda: 0.0,
                                 retries=RetryPolicy(3, base=10))
    ticket = open_ticket(gw)
    pk = gw.inbound.save_raw(mail_from=CUSTOMER, rcpt_to=[gw.keyring.address_for(ticket.key, CUSTOMER)],
                             raw=b"From: ada@customer.example.test\r\nSubject: Re\r\n\r\nDone.\r\n", now=NOW)
    assert gw.pipeline.process(pk) is not None
    (call,) = gw.webhooks.recent()
    outcomes = []
    for _ in range(3):
        outcomes.append(deliverer.deliver(call.pk))
        now[0] += timedelta(hours=1)
    assert [WebhookStatus.RETRYING, WebhookStatus.RETRYING, WebhookStatus.FAILED] == outcomes
    assert deliverer.deliver(call.pk) is None, "a failed call is not retried by itself"
    assert 3 == len(poster.calls)

    with TestClient(create_api(gw), headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        failed = client.get("/v1/webhooks", params={"status": "failed"}).json()["webhooks"]
        assert [(call.pk, "failed", 3)] == [(w["id"], w["status"], w["attempts"]) for w in failed]
        assert "gave up after 3 attempts: answered 500" == failed[0]["last_error"]
        assert 404 == client.post("/v1/webhooks/999/replay").status_code
        assert {"id": call.pk, "status": "queued"} == client.post(f"/v1/webhooks/{call.pk}/replay").json()
        assert 404 == client.post(f"/v1/webhooks/{call.pk}/replay").status_code, "only a failed call is replayed"

    assert WebhookStatus.DELIVERED == deliverer.deliver(call.pk)
    assert 4 == len(poster.calls)
    assert [str(call.pk)] * 4 == [headers[DELIVERY_HEADER] for _, _, headers in poster.calls], "one key per call"
    stored = gw.webhooks.get(call.pk)
    assert stored is not None and (WebhookStatus.DELIVERED, 1) == (stored.status, stored.attempts)


def test_the_cli_lists_and_replays_failed_webhooks(tmp_path: Path, stub_broker: dramatiq.Broker,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """``webhooks list --status failed`` shows a header and the call; ``webhooks replay`` queues it again."""
    settings = settings_for(tmp_path, helpdesk_webhook_url="http://127.0.0.1:9/hook", helpdesk_webhook_secret=SECRET)
    gw = build_gateway(settings, broker=stub_broker)
    ticket = open_ticket(gw)
    pk = gw.inbound.save_raw(mail_from=CUSTOMER, rcpt_to=[gw.keyring.address_for(ticket.key, CUSTOMER)],
                             raw=b"From: ada@customer.example.test\r\nSubject: Re\r\n\r\nDone.\r\n", now=NOW)
    gw.pipeline.process(pk)
    (call,) = gw.webhooks.recent()
    gw.webhooks.mark(call.pk, WebhookStatus.FAILED, now=NOW, error="gave up after 12 attempts: answered 502")
    env = {"GATEWAY_DATABASE_URL": settings.database_url, "GATEWAY_API_KEYS": API_KEY}
    assert 0 == main(["webhooks", "list", "--status", "failed"], env)
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["id", "status", "tries", "entry", "last", "error"]
    assert out[1].split()[:2] == [str(call.pk), "failed"]
    assert 0 == main(["webhooks", "list", "--json"], env)
    assert ["failed"] == [w["status"] for w in json.loads(capsys.readouterr().out)]
    assert 0 == main(["webhooks", "replay", str(call.pk)], env)
    capsys.readouterr()
    assert 1 == main(["webhooks", "replay", str(call.pk)], env)
    assert "no failed webhook call" in capsys.readouterr().err
    stored = gw.webhooks.get(call.pk)
    assert stored is not None and WebhookStatus.QUEUED == stored.status
