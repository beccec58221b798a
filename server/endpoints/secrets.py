"""A project's secret variables: set, list (names only), delete."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.access import caller_of
from server.http import parse_json
from server.state import state_of
from server.store.secrets import ANY_ENVIRONMENT
from server.usecases.secrets import MAX_SECRET_BYTES, delete_secret, list_secrets, set_secret


class SecretIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: str = Field(max_length=MAX_SECRET_BYTES)
    environment: str = Field(default=ANY_ENVIRONMENT, max_length=100)


async def list_project_secrets(request: Request) -> JSONResponse:
    state = state_of(request)
    entries = await run_in_threadpool(list_secrets, state.store, request.path_params["name"])
    return JSONResponse(
        [
            {
                "name": entry.name,
                "environment": entry.environment,
                "updated_by": entry.updated_by,
                "updated_at": entry.updated_at.isoformat(),
            }
            for entry in entries
        ]
    )


async def put_project_secret(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await parse_json(request, SecretIn, limit=2 * MAX_SECRET_BYTES)
    name = request.path_params["secret"]
    created = await run_in_threadpool(
        set_secret,
        state.store,
        state.secret_box,
        request.path_params["name"],
        name,
        body.value,
        body.environment,
        caller_of(request).name,
    )
    answer = {"name": name, "environment": body.environment, "created": created}
    return JSONResponse(answer, status_code=201 if created else 200)


async def delete_project_secret(request: Request) -> Response:
    state = state_of(request)
    environment = request.query_params.get("environment", ANY_ENVIRONMENT)
    await run_in_threadpool(
        delete_secret,
        state.store,
        request.path_params["name"],
        request.path_params["secret"],
        environment,
        caller_of(request).name,
    )
    return Response(status_code=204)
