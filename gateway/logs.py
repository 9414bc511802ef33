"""Logs an operator can follow: one line per thing that happened, with the ids to follow it.

The standard library's logging, not structlog: uvicorn, Dramatiq, SQLAlchemy and Alembic already
log through it, so one handler formats every line of the process alike, and no dependency is
added. Code logs an *event* with fields::

    event(log, "inbound.landed", inbound_id=7, ticket="T-1", status="landed")

and :func:`configure` (called once by the CLI, from settings) picks the format:

- ``json``: one JSON object a line (``ts``, ``level``, ``logger``, ``event``, then the fields),
  for log shippers;
- ``console``: ``2026-12-02T10:00:00.123Z info inbound.landed inbound_id=7 ticket=T-1 ...``.

Lines from other libraries (uvicorn's access log included) come out in the same format, their
message as ``event``. No customer message body is ever a field at info level.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = ["FORMATS", "LEVELS", "ConsoleFormatter", "JsonFormatter", "configure", "event", "one_line"]

#: The formats ``GATEWAY_LOG_FORMAT`` takes.
FORMATS = ("console", "json")
#: The levels ``GATEWAY_LOG_LEVEL`` takes.
LEVELS = ("debug", "info", "warning", "error")
#: The attribute of a log record that carries an event's fields.
_FIELDS = "w2c_fields"


def event(logger: logging.Logger, name: str, /, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log event ``name`` with ``fields`` (values that are None are left out)."""
    if logger.isEnabledFor(level):
        logger.log(level, name, extra={_FIELDS: {k: v for k, v in fields.items() if v is not None}})


def _when(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = dict(getattr(record, _FIELDS, {}))
    if record.exc_info:
        fields["error"] = logging.Formatter().formatException(record.exc_info)
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": _when(record), "level": record.levelname.lower(), "logger": record.name,
                "event": record.getMessage(), **_fields(record)}
        return json.dumps(line, ensure_ascii=False, default=str)


class ConsoleFormatter(logging.Formatter):
    """``time level event key=value ...``: for a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_when(record), f"{record.levelname.lower():<7}", record.getMessage()]
        for key, value in _fields(record).items():
            text = str(value)
            parts.append(f"{key}={json.dumps(text, ensure_ascii=False) if (' ' in text or not text) else text}")
        if record.name and not record.name.startswith(("gateway", "inbound", "outbound")):
            parts.append(f"logger={record.name}")
        return " ".join(parts)


def configure(*, level: str = "info", fmt: str = "console", stream: TextIO | None = None) -> logging.Handler:
    """Send every log line of the process to ``stream`` (stderr) at ``level`` in format ``fmt``;
    returns the handler (tests remove it again)."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}: {fmt!r}")
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}: {level!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "w2c", False)]:
        root.removeHandler(old)
    handler.w2c = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # Chatty libraries stay at warning unless debugging the gateway itself.
    for name in ("sqlalchemy", "alembic", "dramatiq", "flanker", "urllib3", "mail.log"):
        logging.getLogger(name).setLevel("DEBUG" if level == "debug" else "WARNING")
    return handler


def one_line(error: BaseException) -> str:
    """``error`` as one log line: its type and the first line of its text (an outage's, without a traceback)."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__
