"""The audit log, read-only: who did what, when, where and how it ended."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from pipelines.errors import PayloadError
from server.http import query_int
from server.state import state_of
from server.store.audit import AuditEntry, AuditFilter


def _moment(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise PayloadError(
            f"{name} must be an ISO 8601 time, like 2026-12-01 or 2026-12-01T12:00:00Z", name
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def entry_json(entry: AuditEntry) -> dict[str, object]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "user": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "project": entry.project,
        "environment": entry.environment,
        "outcome": entry.outcome,
        "detail": entry.detail,
    }


async def audit_log(request: Request) -> JSONResponse:
    """``?user=&project=&environment=&action=&since=&until=&limit=&before=``: the
    newest entries first; ``before`` (an entry's id) pages to older ones."""
    params = request.query_params
    where = AuditFilter(
        actor=params.get("user"),
        project=params.get("project"),
        environment=params.get("environment"),
        action=params.get("action"),
        since=_moment(request, "since"),
        until=_moment(request, "until"),
    )
    limit = query_int(request, "limit", 100, 1, 1000)
    before = query_int(request, "before", 0, 0, 2**62) or None
    found = await run_in_threadpool(state_of(request).store.audit.search, where, limit, before)
    return JSONResponse([entry_json(entry) for entry in found])
