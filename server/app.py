"""The Starlette application, built by :func:`create_app` from settings.

The lifespan opens the store (migrating it), Redis and the git mirrors, starts the
engine, and undoes all of it at shutdown. Nothing lives in module globals.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from pipelines.errors import ShipwayError
from runners.git_mirror import GitMirrors
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


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        store = Store.open(settings.database_url, host_ports=settings.host_ports)
        connection = redis.Redis.from_url(settings.redis_url)
        queue = RqJobQueue(connection)
        sources = GitMirrors(settings.mirrors_dir)
        engine = Engine(store, queue, sources, settings.engine_interval_seconds)
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

    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={ShipwayError: handle_shipway_error, HTTPException: _http_error},
    )
