"""GET /metrics parses as Prometheus text, and its counters move when a reply lands, an email is
sent and a recipient is refused."""

from __future__ import annotations

import smtplib
from pathlib import Path

import dramatiq
import httpx
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import build_gateway
from gateway.run import Parts
from tests.helpers import API_KEY, CUSTOMER, gmail_reply, parse, settings_for, wait_for


def scrape(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = client.get("/metrics")
    assert 200 == answer.status_code and answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text) for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_with_the_work(tmp_path: Path, stub_broker: dramatiq.Broker) -> None:
    """An email sent, a refusal, a reply landed: their counters go up; the outbox gauges are there."""
    gw = build_gateway(settings_for(tmp_path), broker=stub_broker)
    with Parts(gw, sweep_interval=0.5) as parts, httpx.Client(
        base_url=f"http://127.0.0.1:{parts.api_port}", headers={"Authorization": f"Bearer {API_KEY}"}
    ) as client:
        before = scrape(client)
        client.post("/v1/events", json={
            "type": "ticket.created", "id": "evt-m", "occurred_at": "2026-11-26T10:00:00Z",
            "ticket": {"id": "T-M", "title": "Printer", "state": "submitted", "created_by": "customer"},
            "customer": {"id": "c-m", "email": CUSTOMER, "name": "Ada", "locale": "en"},
        }).raise_for_status()
        wait_for(lambda: client.get("/v1/outbox").json()["emails"][0]["status"] == "sent", what="the email")
        original = parse(client.get("/v1/outbox").json()["emails"][0]["raw"])
        with smtplib.SMTP("127.0.0.1", parts.smtp_port) as smtp:
            smtp.ehlo()
            smtp.mail(CUSTOMER)
            assert 550 == smtp.rcpt("nobody@reply.example.test")[0]
            smtp.rset()
            smtp.sendmail(CUSTOMER, [original["Reply-To"]], gmail_reply(original, sender=CUSTOMER, text="Works."))
        wait_for(lambda: [e for e in client.get("/v1/tickets/T-M/thread").json()["entries"]
                          if e["kind"] == "customer_reply"], what="the reply")
        after = wait_for(lambda: (s := scrape(client)) and value(s, "w2c_inbound_outcomes_total", status="landed",
                                                                   threaded_by="token") > 0 and s,
                         what="the landed counter")
    moved = {
        "email sent": ("w2c_emails_total", {"status": "sent"}),
        "event applied": ("w2c_events_total", {"type": "ticket.created", "outcome": "applied"}),
        "refusal": ("w2c_smtp_replies_total", {"code_class": "5xx", "reason": "UnknownRecipient"}),
        "accepted": ("w2c_smtp_replies_total", {"code_class": "2xx", "reason": "accepted"}),
        "landed": ("w2c_inbound_outcomes_total", {"status": "landed", "threaded_by": "token"}),
    }
    for what, (name, labels) in moved.items():
        assert value(after, name, **labels) > value(before, name, **labels), what
    assert ("w2c_outbox_queue_depth", ()) in after
    assert value(after, "w2c_commit_group_size_count") > 0
    assert any(name == "w2c_job_latency_seconds_count" for name, _ in after)
