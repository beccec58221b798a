"""GET /healthz: is the server up, can it reach its database and Redis, and if not,
what is down since when; is its engine thread alive. 503 while anything is down.
GET /metrics: Prometheus's text format (X4), no token, like /healthz."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.dependencies import DATABASE, REDIS
from server.metrics import render
from server.state import state_of
from server.store.tables import utcnow


async def healthz(request: Request) -> JSONResponse:
    state = state_of(request)
    board = state.engine.board
    checks = {
        DATABASE: board.report(DATABASE, await run_in_threadpool(state.store.unreachable)),
        REDIS: board.report(REDIS, await run_in_threadpool(state.queue.unreachable)),
    }
    now = utcnow()
    down: dict[str, Any] = {
        name: {
            "since": outage.since.isoformat(),
            "seconds": round((now - outage.since).total_seconds(), 1),
            "error": outage.error,
        }
        for name, outage in board.outages().items()
    }
    engine = state.engine
    healthy = all(checks.values()) and engine.alive
    body: dict[str, Any] = {"status": "ok" if healthy else "degraded", "checks": checks}
    if down:
        body["down"] = down
    if not engine.alive:
        body["engine"] = "stopped"
    return JSONResponse(body, status_code=200 if healthy else 503)


async def metrics(request: Request) -> Response:
    state = state_of(request)
    body = await run_in_threadpool(render, state.store, state.queue)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
