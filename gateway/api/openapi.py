"""The OpenAPI document: FastAPI's, plus the schemas that routes name by reference themselves.

FastAPI lists a model among ``components/schemas`` only when a route answers it as JSON. The
error body on routes answering HTML, and the data of the event stream's frames, are named by
``$ref`` instead (:func:`schema_ref`); :class:`DocumentedApi` adds those models to the document.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

__all__ = ["REF_PREFIX", "DocumentedApi", "schema_ref"]

#: Where the document keeps its schemas.
REF_PREFIX = "#/components/schemas/"


def schema_ref(model: type[BaseModel]) -> dict[str, str]:
    """A JSON Schema reference to ``model`` among the document's schemas."""
    return {"$ref": REF_PREFIX + model.__name__}


class DocumentedApi(FastAPI):
    """A FastAPI app whose OpenAPI document also holds ``referenced`` (models routes name by :func:`schema_ref`)."""

    def __init__(self, *, referenced: Sequence[type[BaseModel]] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.referenced = tuple(referenced)

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document with the referenced models' schemas added (built once)."""
        if self.openapi_schema is None:
            document = super().openapi()
            if self.referenced:
                _, defs = models_json_schema(
                    [(model, "serialization") for model in self.referenced], ref_template=REF_PREFIX + "{model}"
                )
                schemas = document.setdefault("components", {}).setdefault("schemas", {})
                for name, schema in defs.get("$defs", {}).items():
                    schemas.setdefault(name, schema)
            self.openapi_schema = document
        return self.openapi_schema
