"""Pieces shared by the JSON the gateway answers with (API responses, stream frames, CLI output).

Response models are built by the gateway from its own records, never from client input; they
exist so the OpenAPI document describes every answer and so one shape serves every channel.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

__all__ = ["Absent", "Instant", "OutModel"]


#: A moment, as ``datetime.isoformat()`` writes it (``+00:00`` where pydantic would write ``Z``), the
#: way clients have always read it: builders pass ``value.isoformat()``. A string, not a datetime
#: with a serialiser, because calling back into Python for every datetime doubled the time a thread
#: page takes to serialise.
Instant = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]

#: ``X | Absent = None``: a key left out of the JSON when it does not apply, never written as null
#: (serialise with ``exclude_unset`` or ``exclude_none``); the schema shows an optional ``X``.
Absent = SkipJsonSchema[None]


def _absent_is_no_default(schema: dict[str, Any]) -> None:
    for field in schema.get("properties", {}).values():
        if "default" in field and field["default"] is None:
            del field["default"]  # an Absent key is left out, not null


class OutModel(BaseModel):
    """Base of the response models.

    Serialise with ``by_alias=True`` (FastAPI does): a few keys are Python keywords (``from``).
    The schemas do not forbid other keys, so an answer may gain keys without breaking clients.
    """

    model_config = ConfigDict(json_schema_extra=_absent_is_no_default)
