"""``GATEWAY_WEBHOOK_BATCH``: the replies one job landed reach the help desk in one signed POST, and a
batch the help desk refuses is retried call by call, each still in the batch format."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import dramatiq

from gateway.app import Gateway, build_gateway
from gateway.models import WebhookStatus
from inbound.webhook import BATCH_HEADER, DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, MemoryPoster, sign
from tests.helpers import CUSTOMER, NOW, open_ticket, settings_for

SECRET = "webhook-secret-0123456789"
URL = "http://127.0.0.1:9/hook"


def landed_three(database_url: str, tmp_path: Path, broker: dramatiq.Broker, poster: MemoryPoster,
                 batch: int, now: list[datetime] | None = None) -> tuple[Gateway, list[int]]:
    """A gateway whose pipeline landed three replies in one job; the pks of their webhook calls."""
    clock = now if now is not None else [NOW]
    settings = settings_for(tmp_path, database_url=database_url, helpdesk_webhook_url=URL,
                            helpdesk_webhook_secret=SECRET, webhook_batch=batch)
    gw = build_gateway(settings, broker=broker, clock=lambda: clock[0], webhook_poster=poster)
    stored = []
    for n in range(3):
        ticket = open_ticket(gw, f"T-{n}")
        stored.append(gw.inbound.save_raw(
            mail_from=CUSTOMER, rcpt_to=[gw.keyring.address_for(ticket.key, CUSTOMER)],
            raw=f"From: {CUSTOMER}\r\nSubject: Re\r\nMessage-ID: <b{n}@customer.test>\r\n\r\nReply {n}.\r\n".encode(),
            now=NOW))
    gw.pipeline.process_many(stored)
    return gw, sorted(call.pk for call in gw.webhooks.recent())


def test_a_jobs_replies_go_in_one_signed_post(database_url: str, tmp_path: Path, stub_broker: dramatiq.Broker) -> None:
    poster = MemoryPoster()
    gw, pks = landed_three(database_url, tmp_path, stub_broker, poster, batch=16)
    assert 3 == len(pks)
    assert gw.webhook_deliverer is not None
    outcomes = gw.webhook_deliverer.deliver_many(pks)
    assert {pk: WebhookStatus.DELIVERED for pk in pks} == outcomes
    ((url, body, headers),) = poster.calls
    assert (URL, "3") == (url, headers[BATCH_HEADER])
    assert DELIVERY_HEADER not in headers, "the delivery ids are in the body"
    assert sign(SECRET, int(headers[TIMESTAMP_HEADER]), body) == headers[SIGNATURE_HEADER]
    deliveries = json.loads(body)["deliveries"]
    assert [str(pk) for pk in pks] == [d["delivery"] for d in deliveries]
    assert ["Reply 0.", "Reply 1.", "Reply 2."] == sorted(d["event"]["reply"]["text"] for d in deliveries)
    assert all(call.status is WebhookStatus.DELIVERED for call in gw.webhooks.recent())


def test_a_refused_batch_is_retried_call_by_call(database_url: str, tmp_path: Path,
                                                 stub_broker: dramatiq.Broker) -> None:
    poster = MemoryPoster(answers=[503])
    now = [NOW]
    gw, pks = landed_three(database_url, tmp_path, stub_broker, poster, batch=16, now=now)
    assert gw.webhook_deliverer is not None
    assert {pk: WebhookStatus.RETRYING for pk in pks} == gw.webhook_deliverer.deliver_many(pks)
    assert {"answered 503"} == {call.last_error for call in gw.webhooks.recent()}
    now[0] += timedelta(hours=1)  # every call is due again; each retry job names one call
    assert {pks[0]: WebhookStatus.DELIVERED} == gw.webhook_deliverer.deliver_many([pks[0]])
    (_, body, headers) = poster.calls[-1]
    assert "1" == headers[BATCH_HEADER], "a batch of one: the format the help desk asked for"
    assert [str(pks[0])] == [d["delivery"] for d in json.loads(body)["deliveries"]]


def test_without_batches_each_reply_is_its_own_call(database_url: str, tmp_path: Path,
                                                    stub_broker: dramatiq.Broker) -> None:
    poster = MemoryPoster()
    gw, pks = landed_three(database_url, tmp_path, stub_broker, poster, batch=1)
    assert gw.webhook_deliverer is not None
    gw.webhook_deliverer.deliver_many(pks)
    assert sorted(str(pk) for pk in pks) == sorted(headers[DELIVERY_HEADER] for _, _, headers in poster.calls)
    assert all(BATCH_HEADER not in headers and "reply" in json.loads(body) for _, body, headers in poster.calls)
