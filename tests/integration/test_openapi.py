"""The OpenAPI document: every route documents its answer and its errors, by model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dramatiq.brokers.stub import StubBroker
from fastapi.testclient import TestClient

from gateway.api import create_api
from gateway.app import build_gateway
from tests.helpers import settings_for

ERROR = {"$ref": "#/components/schemas/ErrorOut"}
#: Routes a browser opens without a key (sample data only).
KEYLESS = {"/v1/previews", "/v1/previews/{kind}"}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``/openapi.json`` as the API serves it."""
    tmp = Path(tmp_path_factory.mktemp("openapi"))
    broker = StubBroker()
    try:
        with TestClient(create_api(build_gateway(settings_for(tmp), broker=broker))) as client:
            answer = client.get("/openapi.json")
    finally:
        broker.close()
    assert 200 == answer.status_code
    return dict(answer.json())


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every documented route under /v1: path, method, operation."""
    for path, methods in document["paths"].items():
        if path.startswith("/v1/"):
            for method, operation in methods.items():
                yield path, method, operation


def refs(node: Any) -> Iterator[str]:
    """Every ``$ref`` in ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_every_route_documents_its_answer_by_a_schema(document: dict[str, Any]) -> None:
    """Each /v1 route has a 2xx answer whose every media type has a schema: a model for JSON, a type otherwise."""
    schemas = document["components"]["schemas"]
    seen = []
    for path, method, operation in operations(document):
        answers = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
        assert answers, f"{method} {path} documents no 2xx answer"
        for code, answer in answers.items():
            assert answer.get("content"), f"{method} {path} {code} documents no body"
            for media_type, content in answer["content"].items():
                schema = content.get("schema", {})
                if media_type == "application/json":
                    name = schema.get("$ref", "").removeprefix("#/components/schemas/")
                    assert schemas.get(name, {}).get("properties"), f"{method} {path} {code}: {schema} is no model"
                else:
                    assert schema.get("type"), f"{method} {path} {code} {media_type}: empty schema"
        seen.append(f"{method} {path}")
    assert len(seen) >= 13, seen  # events, inbound, quarantine (3), outbox, previews (2), Messenger (5)


def test_every_error_answer_is_the_error_model(document: dict[str, Any]) -> None:
    """4xx/5xx answers are ``ErrorOut`` in JSON; keyed routes document 401; FastAPI's own 422 shape never shows."""
    for path, method, operation in operations(document):
        errors = {code: r for code, r in operation["responses"].items() if code[0] in "45"}
        for code, answer in errors.items():
            assert {"application/json": {"schema": ERROR}} == answer["content"], f"{method} {path} {code}"
            assert answer["description"], f"{method} {path} {code}"
        if operation.get("parameters") or operation.get("requestBody"):
            assert "422" in errors, f"{method} {path} takes input but documents no 422"
        if path not in KEYLESS:
            assert "401" in errors, f"{method} {path} needs a key but documents no 401"
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert "required" in document["components"]["schemas"]["ErrorOut"]


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    """Schemas named by hand (the error body, the stream's events) are in the document too."""
    schemas = document["components"]["schemas"]
    missing = {r for r in refs(document) if r.removeprefix("#/components/schemas/") not in schemas}
    assert set() == missing


def test_the_stream_documents_its_events(document: dict[str, Any]) -> None:
    """The event stream's 200 is ``text/event-stream`` whose events carry EntryEventOut or TicketEventOut data."""
    answer = document["paths"]["/v1/customers/{customer_id}/events"]["get"]["responses"]["200"]
    stream = answer["content"]["text/event-stream"]
    data = stream["itemSchema"]["properties"]["data"]
    assert "application/json" == data["contentMediaType"]
    assert {"#/components/schemas/EntryEventOut", "#/components/schemas/TicketEventOut"} == set(refs(data))


def test_optional_keys_are_optional_and_never_null(document: dict[str, Any]) -> None:
    """A thread entry's situational keys are not required and not nullable; ``state.from`` is nullable."""
    schemas = document["components"]["schemas"]
    entry = schemas["ThreadEntryOut"]
    assert ["id", "kind", "text", "created_at"] == entry["required"]
    for key in ("reply_id", "author", "channel", "state", "seen_at"):
        assert "null" not in str(entry["properties"][key]) and "default" not in entry["properties"][key], key
    assert {"from", "to"} == set(schemas["StateChangeOut"]["properties"])
    assert {"type": "null"} in schemas["StateChangeOut"]["properties"]["from"]["anyOf"]
    assert "from" in schemas["InboundMessageOut"]["properties"]
    assert {"type": "string", "format": "date-time"}.items() <= entry["properties"]["created_at"].items()
