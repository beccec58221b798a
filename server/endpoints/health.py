"""GET /healthz: is the server up, and can it reach its database and Redis.
GET /metrics: Prometheus's text format (X4), no token, like /healthz."""

from __future__ import annotations

import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.metrics import render
from server.state import state_of


async def healthz(request: Request) -> JSONResponse:
    state = state_of(request)

    def database_ok() -> bool:
        try:
            with state.store.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    checks = {
        "database": await run_in_threadpool(database_ok),
        "redis": await run_in_threadpool(state.queue.ping),
    }
    healthy = all(checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", "checks": checks},
        status_code=200 if healthy else 503,
    )


async def metrics(request: Request) -> Response:
    state = state_of(request)
    body = await run_in_threadpool(render, state.store, state.queue)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
