"""Health routes: ``/healthz`` says the process answers (liveness), ``/readyz`` that what it needs answers too.

``/readyz`` runs each check it is given (the store always; the broker when Redis is configured) and
answers 200 when every one passes, 503 naming the ones that failed. Why a check failed is logged,
not answered: the route needs no key, and a driver's error names hosts and users.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Literal

from fastapi import APIRouter, Response
from sqlalchemy import select

from gateway.api.responses import HealthOut, ReadyOut
from gateway.store import Database
from gateway.store.tables import kv

__all__ = ["Check", "router_for", "store_answers"]

log = logging.getLogger(__name__)

#: A readiness check: returns when the thing answers, raises when it does not.
Check = Callable[[], object]


def store_answers(db: Database) -> Check:
    """A check that reads one row of the store (through a reader, as every read goes)."""

    def check() -> None:
        with db.read() as conn:
            conn.execute(select(kv.c.key).limit(1)).all()

    return check


def router_for(*, checks: Mapping[str, Check]) -> APIRouter:
    """``/healthz`` and ``/readyz`` (no key: for load balancers and orchestrators)."""
    router = APIRouter(tags=["ops"])

    @router.get("/healthz")
    def healthz() -> HealthOut:
        """Liveness: the process answers. Touches nothing else (use `/readyz` for the store and broker)."""
        return HealthOut(status="ok")

    @router.get("/readyz", responses={503: {"model": ReadyOut, "description": "Something this process needs is down"}})
    def readyz(response: Response) -> ReadyOut:
        """Readiness: 200 when the store (and the broker, when Redis is configured) answers; 503 naming
        what is down otherwise."""
        results = {name: _run(name, check) for name, check in checks.items()}
        ready = all(result == "ok" for result in results.values())
        if not ready:
            response.status_code = 503
        return ReadyOut(status="ready" if ready else "unavailable", checks=results)

    return router


def _run(name: str, check: Check) -> Literal["ok", "down"]:
    try:
        check()
    except Exception:
        log.warning("readiness check %s failed", name, exc_info=True)
        return "down"
    return "ok"
