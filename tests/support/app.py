"""The server as an app in this process, on the test's real Redis and database, and
the CLI's own code sending to it: for tests of the API that need no server process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from starlette.testclient import TestClient

from server.app import create_app
from server.cli.client import ApiClient
from server.settings import Settings
from server.state import AppState
from server.store import Store

API_TOKEN = "api-token-0123456789"
RUNNER_TOKEN = "runner-token-0123456789"
ADMIN = {"Authorization": f"Bearer {API_TOKEN}"}


def settings_for(state_dir: Path, redis_url: str) -> Settings:
    return Settings.from_env(
        {
            "SHIPWAY_STATE_DIR": str(state_dir),
            "SHIPWAY_REDIS_URL": redis_url,
            "SHIPWAY_API_TOKEN": API_TOKEN,
            "SHIPWAY_RUNNER_TOKEN": RUNNER_TOKEN,
        }
    )


@contextmanager
def running_app(state_dir: Path, redis_url: str) -> Iterator[TestClient]:
    """The app started (its lifespan run) and stopped again; SQLite in ``state_dir``."""
    with TestClient(create_app(settings_for(state_dir, redis_url))) as client:
        yield client


def store_of(client: TestClient) -> Store:
    state: AppState = client.app.state.shipway  # type: ignore[attr-defined]
    return state.store


def cli_api(client: TestClient, token: str = API_TOKEN) -> ApiClient:
    """The CLI's client, its requests answered by the app in this process."""

    def forward(request: httpx.Request) -> httpx.Response:
        answer = client.request(
            request.method,
            request.url.raw_path.decode(),
            content=request.content,
            headers=dict(request.headers),
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    return ApiClient("http://shipway", token, httpx.MockTransport(forward))
