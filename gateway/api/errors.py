"""The API's one error shape, ``{"error": <what is wrong>}`` (:class:`ErrorOut`), and every handler answering it.

Event errors add ``"code": <class name>`` and map to HTTP answers in one table
(:data:`EVENT_ERRORS`); invalid requests add ``"fields"``, the request fields at fault.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy.exc import DBAPIError, PendingRollbackError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.api.openapi import schema_ref
from gateway.api.schemas import EVENT_TYPES
from gateway.errors import (
    DuplicateReply,
    EventError,
    InvalidTransition,
    StateMismatch,
    StoreUnavailable,
    UnknownState,
    UnknownTicket,
)
from gateway.store.db import is_lost_store
from gateway.wire_types import Absent, OutModel

__all__ = [
    "EVENT_ERRORS",
    "ErrorOut",
    "InvalidFields",
    "error_response",
    "error_responses",
    "install_error_handlers",
    "install_event_errors",
    "status_for",
]

log = logging.getLogger(__name__)

#: HTTP status per event error; the most specific class listed wins (409 for anything unlisted).
EVENT_ERRORS: dict[type[EventError], int] = {
    UnknownTicket: 404,  # the event names a ticket the gateway never got a ticket.created for
    DuplicateReply: 409,  # the reply id is already on a ticket, under another event id
    StateMismatch: 409,  # 'from' is not the ticket's current state: stale or out of order
    UnknownState: 422,  # 'from' or 'to' is not a state name
    InvalidTransition: 422,  # 'from' equals 'to'
    EventError: 409,  # e.g. ticket.created for a ticket id that exists under another event
}

#: What each error status means, for the OpenAPI document.
ERROR_DESCRIPTIONS: Mapping[int, str] = {
    400: "The body cannot be used (an empty message).",
    401: "No key, or a key that is not valid here (answered with `WWW-Authenticate: Bearer`).",
    403: "The key may not do this.",
    404: "Not found; another customer's tickets answer exactly the same.",
    409: "The event conflicts with what the gateway holds (`code` says how); nothing of it was applied.",
    413: "The message is larger than this server accepts.",
    415: "The body is not `message/rfc822`.",
    422: "Invalid request: `error` says what; `fields` names the fields at fault when it can, "
    "`code` the event error when the event is impossible.",
    503: "The store is unavailable; try again.",
}


class ErrorOut(OutModel):
    """The body of every error answer."""

    error: str = Field(description="what is wrong, for a person to read")
    code: str | Absent = Field(default=None, description="event errors: the error's class name")
    fields: list[str] | Absent = Field(
        default=None, description="invalid requests: the fields at fault (`query.limit`, `up_to`, `body`)"
    )


class InvalidFields(HTTPException):
    """A request a route found invalid itself: answered 422 with ``fields`` naming what to fix."""

    def __init__(self, detail: str, *, fields: Sequence[str]) -> None:
        super().__init__(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)
        self.fields = list(fields)


def error_response(
    status_code: int,
    error: str,
    *,
    code: str | None = None,
    fields: Sequence[str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """An error answer: :class:`ErrorOut` without the keys that do not apply."""
    body = ErrorOut(error=error, code=code, fields=None if fields is None else list(fields))
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status_code, headers=headers)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route answering these error statuses, each with an :class:`ErrorOut` body.

    The JSON content is named explicitly (not ``model=``) so that routes answering HTML or a stream
    still document JSON errors; ``create_api`` puts :class:`ErrorOut` among the schemas.
    """
    return {
        code: {
            "description": ERROR_DESCRIPTIONS[code],
            "content": {"application/json": {"schema": schema_ref(ErrorOut)}},
        }
        for code in statuses
    }


def status_for(error: EventError) -> int:
    """The HTTP status for ``error``: its nearest class in :data:`EVENT_ERRORS`."""
    for cls in type(error).__mro__:
        if cls in EVENT_ERRORS:
            return EVENT_ERRORS[cls]
    return 409


def install_event_errors(app: FastAPI) -> None:
    """Answer every :class:`EventError` by :data:`EVENT_ERRORS`; nothing of the event was applied."""

    @app.exception_handler(EventError)
    async def event_error(request: Request, exc: EventError) -> JSONResponse:
        return error_response(status_for(exc), str(exc), code=type(exc).__name__)


def _field(loc: tuple[int | str, ...]) -> str:
    # "body" and the event type a discriminated union puts in the location are not fields.
    parts = [str(p) for p in loc if p != "body" and p not in EVENT_TYPES]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    """Answer HTTP errors, invalid requests, event errors and an unavailable store with :class:`ErrorOut`."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        fields = exc.fields if isinstance(exc, InvalidFields) else None
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return error_response(exc.status_code, detail, fields=fields, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [_field(tuple(e["loc"])) for e in exc.errors()]
        problems = [f"{name}: {e['msg']}" for name, e in zip(fields, exc.errors(), strict=True)]
        return error_response(422, "invalid request: " + "; ".join(problems), fields=fields)

    install_event_errors(app)

    @app.exception_handler(StoreUnavailable)
    @app.exception_handler(PendingRollbackError)  # a connection that died inside its transaction
    @app.exception_handler(DBAPIError)
    async def store_down(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, DBAPIError) and not is_lost_store(exc):
            raise exc  # a bug, not an outage: the server error, with its traceback
        log.warning("store unavailable: %s %s answered 503: %s", request.method, request.url.path,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return error_response(503, "the store is unavailable; try again")
