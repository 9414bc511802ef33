"""Prometheus metrics (``prometheus-client``): what each part of the gateway counts and times.

Every metric lives in the process's default registry, named ``w2c_...``. The API serves them at
``GET /metrics`` (with the outbox's depth and oldest age read from the store at scrape time); the
separate ``smtp`` and ``worker`` processes serve their own on ``GATEWAY_METRICS_PORT`` when it is
set (``docs/operations.md``). Scrape every process: counters are per process and Prometheus adds
them up with ``sum()``.
"""

from __future__ import annotations

import functools
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "COMMIT_GROUP",
    "COMMIT_SECONDS",
    "DELIVERY_SECONDS",
    "EMAILS",
    "EVENTS",
    "EXTRACTION_RULES",
    "INBOUND_OUTCOMES",
    "JOB_LATENCY",
    "OUTBOX_DEPTH",
    "OUTBOX_OLDEST_AGE",
    "RELAY_REPLIES",
    "SMTP_ACCEPTED_BYTES",
    "SMTP_CONNECTIONS",
    "SMTP_REPLIES",
    "UNSEEN_CHECKS",
    "UNSEEN_LATENESS",
    "WEBHOOK_ATTEMPTS",
    "child",
    "reply_class",
]

SMTP_REPLIES = Counter("w2c_smtp_replies", "SMTP replies to MAIL, RCPT and DATA, by code class and reason",
                       ["code_class", "reason"])
SMTP_ACCEPTED_BYTES = Counter("w2c_smtp_accepted_bytes", "Bytes of inbound messages answered 250")
SMTP_CONNECTIONS = Gauge("w2c_smtp_connections_open", "Inbound SMTP connections open")
INBOUND_OUTCOMES = Counter("w2c_inbound_outcomes", "Stored inbound messages processed, by outcome and threading signal",
                           ["status", "threaded_by"])
EXTRACTION_RULES = Counter("w2c_extraction_rules", "Replies landed, by the extraction rule that cut them", ["rule"])
EVENTS = Counter("w2c_events", "Help-desk events, by type and outcome (applied, replayed, refused)",
                 ["type", "outcome"])
EMAILS = Counter("w2c_emails", "Outbound emails reaching a status (sent, retrying, failed, suppressed)", ["status"])
DELIVERY_SECONDS = Histogram("w2c_delivery_attempt_seconds", "Time one email takes to hand to the relay",
                             buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
RELAY_REPLIES = Counter("w2c_relay_replies", "The relay's answers to delivery attempts, by class", ["reply_class"])
OUTBOX_DEPTH = Gauge("w2c_outbox_queue_depth", "Outbound emails waiting (queued, retrying or sending)")
OUTBOX_OLDEST_AGE = Gauge("w2c_outbox_oldest_age_seconds", "Age of the oldest outbound email still waiting")
UNSEEN_CHECKS = Counter("w2c_unseen_checks", "Unseen checks of tickets, by decision (emailed, wait, nothing)",
                        ["decision"])
UNSEEN_LATENESS = Histogram("w2c_unseen_lateness_seconds", "How late an unseen-reply email went after it fell due",
                            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
WEBHOOK_ATTEMPTS = Counter("w2c_webhook_attempts", "Help-desk webhook calls made, by outcome", ["outcome"])
COMMIT_GROUP = Histogram("w2c_commit_group_size", "Works committed in one transaction (group commit)",
                         buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
COMMIT_SECONDS = Histogram("w2c_commit_seconds", "Time a group's transaction takes, its works and commit included",
                           buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5))
JOB_LATENCY = Histogram("w2c_job_latency_seconds", "Time from a job's due time to a worker starting it", ["actor"],
                        buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))


@functools.lru_cache(maxsize=4096)
def child(metric: Any, *values: str) -> Any:
    """``metric.labels(*values)``, remembered: ``labels()`` takes a lock and builds its key each call
    (about 25 µs, measured on the delivery path), the child it returns never changes."""
    return metric.labels(*values)


def reply_class(code: str | int | None) -> str:
    """``2xx``, ``4xx``, ``5xx`` (or ``none`` when no answer came)."""
    text = str(code or "")
    return f"{text[0]}xx" if text[:1] in ("2", "3", "4", "5") else "none"
