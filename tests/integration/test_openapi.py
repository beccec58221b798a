"""The OpenAPI document the server serves (X2): valid OpenAPI 3.1, every route in it
with who may call it and its permission, and each body's schema the very model that
validates it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate
from starlette.testclient import TestClient

from server.access import Access, GuardedRoute
from server.routes import routes
from tests.support.app import ADMIN, running_app


@pytest.fixture
def client(tmp_path: Path, redis_url: str) -> Iterator[TestClient]:
    with running_app(tmp_path, redis_url) as test_client:
        yield test_client


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    answer = client.get("/openapi.json")  # no token: it says nothing of the data
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def test_the_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    validate(spec)
    assert spec["openapi"] == "3.1.0"


def test_every_route_is_in_it_with_who_may_call_it(spec: dict[str, Any]) -> None:
    guarded = [route for route in routes if isinstance(route, GuardedRoute)]
    assert len(guarded) == len(routes)
    for route in guarded:
        path = route.path.replace(":int}", "}")
        operation = spec["paths"][path][route.method.lower()]
        assert operation["x-shipway-access"] == route.access.value, path
        if route.access is Access.API:
            assert route.permission is not None
            assert operation["x-shipway-permission"] == route.permission.value, path
            assert operation["security"] == [{"person": []}]
            assert "403" in operation["responses"]
    assert "/openapi.json" in spec["paths"]


def test_each_body_is_described_by_the_model_that_validates_it(
    spec: dict[str, Any], client: TestClient
) -> None:
    create = spec["paths"]["/api/projects"]["post"]["requestBody"]["content"]
    schema = spec["components"]["schemas"][create["application/json"]["schema"]["$ref"][21:]]
    assert set(schema["required"]) == {"name", "clone_url", "webhook_secret"}
    assert schema["additionalProperties"] is False
    # What the document says is refused, the server refuses: an unknown field.
    body = {"name": "a", "clone_url": "/r", "webhook_secret": "s" * 16, "colour": 1}
    refused = client.post("/api/projects", json=body, headers=ADMIN)
    assert (refused.status_code, refused.json()["field"]) == (400, "colour")
    for route in routes:
        assert isinstance(route, GuardedRoute)
        operation = spec["paths"][route.path.replace(":int}", "}")][route.method.lower()]
        assert ("requestBody" in operation) == (route.body is not None), route.path
