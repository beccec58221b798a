"""Every route of server/routes.py checks its caller before it reads the body.

The test walks the route table itself, so a route added later is covered without
being named here: sent an invalid body with no token, a wrong token or the other
kind of token, each answers 401, never 400, 404 or 422."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from server.access import Access
from server.app import create_app
from server.routes import routes
from server.settings import Settings
from tests.support.services import RedisServer

API_TOKEN = "api-token-0123456789"
RUNNER_TOKEN = "runner-token-0123456789"
INVALID_BODY = b'{"pause_mode": "bogus", "branch": "a..b", "runner": ["'
PUBLIC_PATHS = {"/healthz", "/metrics"}


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[TestClient]:
    root: Path = tmp_path_factory.mktemp("access")
    settings = Settings.from_env(
        {
            "SHIPWAY_STATE_DIR": str(root),
            "SHIPWAY_REDIS_URL": redis_server.url,
            "SHIPWAY_API_TOKEN": API_TOKEN,
            "SHIPWAY_RUNNER_TOKEN": RUNNER_TOKEN,
        }
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def expected_access(path: str) -> Access:
    if path in PUBLIC_PATHS:
        return Access.PUBLIC
    if path.startswith("/webhooks/"):
        return Access.WEBHOOK
    if path.startswith("/api/runner/"):
        return Access.RUNNER
    assert path.startswith("/api/"), path
    return Access.API


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(:int)?\}", lambda match: "1" if match[2] else "app", path)


def calls() -> list[tuple[str, str, Access]]:
    found = []
    for route in routes:
        assert isinstance(route, Route)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            found.append((method, route.path, expected_access(route.path)))
    return found


def unauthenticated(access: Access) -> list[dict[str, str]]:
    if access is Access.WEBHOOK:
        return [
            {"X-Gitlab-Event": "Push Hook"},
            {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "not-a-project-secret"},
            {"X-Gitlab-Event": "Note Hook", "X-Gitlab-Token": API_TOKEN},
        ]
    other = RUNNER_TOKEN if access is Access.API else API_TOKEN
    return [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": f"Basic {API_TOKEN}"},
        {"Authorization": f"Bearer {other}"},
    ]


def test_every_route_declares_its_access() -> None:
    for route in routes:
        assert getattr(route, "access", None) is expected_access(route.path), route.path
    public = {route.path for route in routes if getattr(route, "access", None) is Access.PUBLIC}
    assert public == PUBLIC_PATHS


@pytest.mark.parametrize(("method", "path", "access"), calls())
def test_no_route_says_anything_about_a_body_to_an_unauthenticated_caller(
    client: TestClient, method: str, path: str, access: Access
) -> None:
    if access is Access.PUBLIC:
        assert client.request(method, path).status_code in (200, 503)
        return
    for headers in unauthenticated(access):
        response = client.request(
            method,
            concrete(path),
            content=INVALID_BODY,
            headers={**headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 401, (headers, response.text)
        assert set(response.json()) == {"error"}, response.text


@pytest.mark.parametrize(("method", "path", "access"), calls())
def test_the_right_token_passes(client: TestClient, method: str, path: str, access: Access) -> None:
    """The guard lets the right caller through: the answer is then about the request."""
    if access in (Access.PUBLIC, Access.WEBHOOK):
        return  # a webhook's secret belongs to a project: see test_webhooks.py
    token = API_TOKEN if access is Access.API else RUNNER_TOKEN
    response = client.request(
        method, concrete(path), content=INVALID_BODY, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code != 401, response.text
    assert response.status_code < 500, response.text
