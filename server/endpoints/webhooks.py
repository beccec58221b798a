"""POST /webhooks/gitlab: GitLab's Push Hook and Tag Push Hook.

Answers 201 when a pipeline was created, 200 when the delivery was a duplicate,
skipped by branch rules or of an event Shipway ignores (so GitLab never disables
the hook for it). Rejections (400, 401, 404, 413) store nothing but an audit line.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from pipelines.errors import ShipwayError
from server.http import error_response, read_body, status_code_for
from server.state import state_of
from server.usecases.receive_webhook import KEPT_HEADERS, receive_gitlab_webhook

READ_HEADERS = (*KEPT_HEADERS, "X-Gitlab-Token")


async def gitlab_webhook(request: Request) -> JSONResponse:
    state = state_of(request)
    headers = {name: request.headers[name] for name in READ_HEADERS if name in request.headers}
    try:
        body = await read_body(request, state.settings.webhook_max_bytes)
        outcome = await run_in_threadpool(receive_gitlab_webhook, state.store, headers, body)
    except ShipwayError as exc:
        await run_in_threadpool(
            state.store.audit.record,
            "gitlab",
            "webhook.rejected",
            str(status_code_for(exc)),
            headers.get("X-Gitlab-Event"),
            {
                "reason": str(exc),
                "client": request.client.host if request.client else None,
                "delivery": headers.get("Idempotency-Key") or headers.get("X-Gitlab-Event-UUID"),
            },
        )
        return error_response(exc)
    if outcome.status == "created":
        state.engine.wake()
    return JSONResponse(
        {
            "status": outcome.status,
            "reason": outcome.reason,
            "project": outcome.project,
            "pipeline_id": outcome.pipeline_id,
            "delivery_id": outcome.delivery_id,
        },
        status_code=201 if outcome.status == "created" else 200,
    )
