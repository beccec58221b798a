"""Deployment configurations per application and environment, and their compose files."""

from __future__ import annotations

import functools

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from pipelines.errors import PayloadError
from server.access import caller_of
from server.http import read_body
from server.json_body import decode_json_object
from server.state import state_of
from server.store.deployments import StoredConfig
from server.usecases.deploy_config import compose_for, set_config

MAX_CONFIG_BYTES = 4 * 1024 * 1024


def _config_json(stored: StoredConfig) -> dict[str, object]:
    return {
        "environment": stored.environment,
        "version": stored.version,
        "config": stored.config,
        "created_by": stored.created_by,
        "created_at": stored.created_at.isoformat(),
    }


def _version(request: Request) -> int | None:
    raw = request.query_params.get("version")
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise PayloadError("version must be a whole number from 1", "version")
    return int(raw)


async def put_config(request: Request) -> JSONResponse:
    state = state_of(request)
    data = decode_json_object(await read_body(request, MAX_CONFIG_BYTES))
    stored, created = await run_in_threadpool(
        set_config,
        state.store,
        request.path_params["name"],
        request.path_params["environment"],
        data,
        caller_of(request).name,
    )
    return JSONResponse(_config_json(stored), status_code=201 if created else 200)


async def get_config(request: Request) -> JSONResponse:
    state = state_of(request)
    project = await run_in_threadpool(state.store.projects.by_name, request.path_params["name"])
    stored = await run_in_threadpool(
        state.store.deployments.config,
        project.id,
        request.path_params["environment"],
        _version(request),
    )
    return JSONResponse(_config_json(stored))


async def get_compose(request: Request) -> JSONResponse:
    """The compose file a release of ``?image=`` would use, checked by docker-compose."""
    state = state_of(request)
    image = request.query_params.get("image", "")
    if not image or any(character.isspace() for character in image):
        raise PayloadError("image is the image reference to deploy", "image")
    stored, rendered = await run_in_threadpool(
        functools.partial(
            compose_for,
            state.store,
            request.path_params["name"],
            request.path_params["environment"],
            image,
            _version(request),
        )
    )
    return JSONResponse(
        {"version": stored.version, "compose": rendered.compose, "files": rendered.files}
    )
