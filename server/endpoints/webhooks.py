"""POST /webhooks/gitlab: GitLab's Push Hook, Tag Push Hook and Merge Request Hook.

Answers 201 when a pipeline was created, 200 when the delivery was a duplicate,
skipped by branch rules or of an event Shipway ignores (so GitLab never disables
the hook for it). Rejections (400, 401, 404, 413) store nothing but an audit line.
:func:`authenticate` is the route's guard (server/access.py): a token that is no
project's secret is refused before the body is read.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from pipelines.errors import ShipwayError
from server.http import error_response, read_body, status_code_for
from server.state import state_of
from server.usecases.receive_webhook import (
    KEPT_HEADERS,
    authenticate_webhook,
    check_webhook_token,
)

READ_HEADERS = (*KEPT_HEADERS, "X-Gitlab-Token")
_READ_BY_LOWER = {name.lower(): name for name in READ_HEADERS}


def _headers(request: Request) -> dict[str, str]:
    """The headers read, by their names in READ_HEADERS (the first of a repeated one),
    looked up in one walk over the request's headers."""
    found: dict[str, str] = {}
    for raw_name, raw_value in request.headers.raw:
        name = _READ_BY_LOWER.get(raw_name.decode("latin-1").lower())
        if name is not None and name not in found:
            found[name] = raw_value.decode("latin-1")
    return found


def _kept(value: str | None) -> str | None:
    """A header's value as the audit line can store it: 255 characters, no NUL."""
    return value[:255].replace("\x00", "\ufffd") if value else None


async def _audit_rejection(request: Request, exc: ShipwayError) -> None:
    headers = _headers(request)
    await run_in_threadpool(
        state_of(request).store.audit.record,
        "gitlab",
        "webhook.rejected",
        str(status_code_for(exc)),
        _kept(headers.get("X-Gitlab-Event")),
        {
            "reason": str(exc),
            "client": request.client.host if request.client else None,
            "delivery": _kept(headers.get("Idempotency-Key") or headers.get("X-Gitlab-Event-UUID")),
        },
    )


async def authenticate(request: Request) -> None:
    """The route's guard: the token must be some registered project's secret. Checked
    here, in the event loop, when the projects' snapshot answers without a read (a
    thread's round trip costs more than the check); in a thread when it must read."""
    token = request.headers.get("X-Gitlab-Token", "")
    store = state_of(request).store
    try:
        secrets = store.projects.cached_webhook_secrets()
        if secrets is not None:
            check_webhook_token(token, secrets)
        else:
            await run_in_threadpool(authenticate_webhook, store, token)
    except ShipwayError as exc:
        await _audit_rejection(request, exc)
        raise


async def gitlab_webhook(request: Request) -> JSONResponse:
    state = state_of(request)
    headers = _headers(request)
    try:
        body = await read_body(request, state.settings.webhook_max_bytes)
        outcome = await state.intake.receive(headers, body)
    except ShipwayError as exc:
        await _audit_rejection(request, exc)
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
