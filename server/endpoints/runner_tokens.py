"""Runners' own tokens (administrators): one per runner, shown once, revocable."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from server.access import caller_of
from server.http import parse_json, path_int
from server.state import state_of
from server.store.users import RunnerTokenEntry


class RunnerTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    runner: str = Field(min_length=1, max_length=255)  # as runners name themselves


def entry_json(entry: RunnerTokenEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "runner": entry.runner,
        "created_at": entry.created_at.isoformat(),
        "revoked_at": None if entry.revoked_at is None else entry.revoked_at.isoformat(),
    }


async def create(request: Request) -> JSONResponse:
    store = state_of(request).store
    body = await parse_json(request, RunnerTokenIn)
    token, token_id = await run_in_threadpool(store.runner_tokens.create, body.runner)
    await run_in_threadpool(
        store.audit.record,
        caller_of(request).name,
        "runner_token.create",
        "created",
        f"runner token {token_id}",
        {"runner": body.runner},
    )
    return JSONResponse({"id": token_id, "runner": body.runner, "token": token}, status_code=201)


async def listed(request: Request) -> JSONResponse:
    found = await run_in_threadpool(state_of(request).store.runner_tokens.all)
    return JSONResponse([entry_json(entry) for entry in found])


async def revoke(request: Request) -> JSONResponse:
    store = state_of(request).store
    token_id = path_int(request, "token_id")
    entry = await run_in_threadpool(store.runner_tokens.revoke, token_id)
    await run_in_threadpool(
        store.audit.record,
        caller_of(request).name,
        "runner_token.revoke",
        "revoked",
        f"runner token {token_id}",
        {"runner": entry.runner},
    )
    return JSONResponse(entry_json(entry))
