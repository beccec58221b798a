"""The Starlette application, built by :func:`create_app` from settings.

The lifespan opens the store (migrating it), Redis and the git mirrors, starts the
engine, and undoes all of it at shutdown. Nothing lives in module globals.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import redis
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from pipelines.errors import ShipwayError
from runners.git_mirror import GitMirrors
from server import openapi
from server.access import Endpoint, public
from server.dependencies import DependencyBoard
from server.discovery import EtcdWeights
from server.engine import Engine
from server.gitlab import PythonGitLab
from server.gitlab_reporter import GitLabReporter
from server.http import handle_shipway_error
from server.queue import RqJobQueue
from server.routes import routes
from server.secret_box import SecretBox
from server.settings import Settings
from server.state import AppState
from server.store import Store


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)


async def _database_unreachable(request: Request, exc: Exception) -> JSONResponse:
    """The database is away (or too busy to answer): 503, so that runners and
    clients retry, instead of a 500 that reads as a bug."""
    assert isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError)
    reason = str(exc).splitlines()[0]
    return JSONResponse(
        {"error": f"the database is unavailable: {reason}"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


def _redis(url: str) -> redis.Redis:
    # Bounded waits: a Redis that does not answer fails a call within seconds rather
    # than holding the engine or a request. The read timeout exceeds the longest
    # blocking call the server makes (10 s for a runner's answer).
    return redis.Redis.from_url(
        url, socket_connect_timeout=5, socket_timeout=30, health_check_interval=30
    )


def _openapi_endpoint(table: list[Any]) -> Endpoint:
    """``GET /openapi.json``: the API described (X2), made once, from the routes."""
    made: list[dict[str, Any]] = []

    async def openapi_json(request: Request) -> JSONResponse:
        if not made:
            made.append(openapi.document([*table, public("/openapi.json", openapi_json)]))
        return JSONResponse(made[0])

    return openapi_json


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        store = Store.open(settings.database_url, host_ports=settings.host_ports)
        connection = _redis(settings.redis_url)
        queue = RqJobQueue(connection)
        sources = GitMirrors(settings.mirrors_dir)
        board = DependencyBoard()
        engine = Engine(
            store,
            queue,
            sources,
            settings.engine_interval_seconds,
            stuck_after=timedelta(seconds=settings.stuck_after_seconds),
            board=board,
        )
        box = SecretBox.from_key_file(settings.secret_key_file)
        weights = EtcdWeights(settings.etcd_url) if settings.etcd_url else None
        app.state.shipway = AppState(settings, store, queue, sources, engine, box, weights)
        reporter = None
        if settings.gitlab_url and settings.gitlab_token:
            gitlab = PythonGitLab(settings.gitlab_url, settings.gitlab_token)
            reporter = GitLabReporter(store, gitlab, settings.public_url)
            reporter.start()
        engine.start()
        try:
            yield
        finally:
            engine.stop()
            if reporter is not None:
                reporter.stop()
            connection.close()
            store.close()

    served = [*routes, public("/openapi.json", _openapi_endpoint(routes))]
    return Starlette(
        routes=served,
        lifespan=lifespan,
        exception_handlers={
            ShipwayError: handle_shipway_error,
            HTTPException: _http_error,
            sa.exc.OperationalError: _database_unreachable,
            sa.exc.InterfaceError: _database_unreachable,
        },
    )
