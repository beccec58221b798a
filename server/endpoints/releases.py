"""Releases: order one, follow it, pause, resume, switch its pause mode, close it;
an environment's history and current version; a rolling restart and an instance's
container logs (L9)."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from pipelines.release import Release
from pipelines.rollout import Grouping, PauseMode
from server import registry_check
from server.access import caller_of
from server.dependencies import REDIS
from server.http import parse_json, path_int, query_int
from server.state import state_of
from server.store.tables import utcnow
from server.usecases import promotion
from server.usecases import release_operations as operations
from server.usecases import releases as usecase
from server.usecases.approvals import approval_state
from server.usecases.waiting import release_waits


class ReleaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str = Field(min_length=1, max_length=600)
    batches: int | None = Field(default=None, ge=1, le=100)
    grouping: Grouping | None = None
    pause_mode: PauseMode = PauseMode.AFTER_FIRST
    beta: bool = False


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str = Field(min_length=1, max_length=600)
    reason: str = Field(min_length=1, max_length=2000)
    batches: int | None = Field(default=None, ge=1, le=100)
    grouping: Grouping | None = None
    pause_mode: PauseMode = PauseMode.NEVER


class PromotionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    source: str = Field(alias="from", min_length=1, max_length=100)
    target: str = Field(alias="to", min_length=1, max_length=100)
    batches: int | None = Field(default=None, ge=1, le=100)
    grouping: Grouping | None = None
    pause_mode: PauseMode = PauseMode.AFTER_FIRST


class RestartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    batches: int | None = Field(default=None, ge=1, le=100)
    grouping: Grouping | None = None
    pause_mode: PauseMode = PauseMode.NEVER


class TrafficIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    new_share: int = Field(ge=0, le=100)


class ModeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pause_mode: PauseMode


def release_json(
    release: Release, instances: list[Any] | None = None, waiting: str | None = None
) -> dict[str, Any]:
    """``waiting``: why a release that has not ended is where it is."""
    body: dict[str, Any] = {
        "id": release.id,
        "kind": release.kind.value,
        "environment": release.environment,
        "image": release.image,
        "config_version": release.config_version,
        "batches": release.batches,
        "beta": release.beta,
        "pause_mode": release.pause_mode.value,
        "status": release.status.value,
        "waiting": waiting,
        "next_batch": release.next_batch,
        "batch_runner": release.batch_runner,
        "created_by": release.created_by,
        "reason": release.reason,
        "closed": release.closed,
        "rollback_of": release.rollback_of,
        "created_at": release.created_at.isoformat(),
        "finished_at": release.finished_at.isoformat() if release.finished_at else None,
    }
    if instances is not None:
        body["instances"] = [
            {"name": i.name, "batch": i.batch, "status": i.status.value, "log": i.log}
            for i in instances
        ]
    return body


async def create(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await parse_json(request, ReleaseIn)
    release = await run_in_threadpool(
        functools.partial(
            usecase.create_release,
            state.store,
            request.path_params["name"],
            request.path_params["environment"],
            body.image,
            batches=body.batches,
            grouping=body.grouping,
            pause_mode=body.pause_mode,
            beta=body.beta,
            actor=caller_of(request).name,
        )
    )
    state.engine.wake()
    return JSONResponse(release_json(release), status_code=201)


async def roll_back(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await parse_json(request, RollbackIn)
    release = await run_in_threadpool(
        functools.partial(
            usecase.rollback,
            state.store,
            request.path_params["name"],
            request.path_params["environment"],
            body.image,
            body.reason,
            batches=body.batches,
            grouping=body.grouping if body.batches is None else None,
            pause_mode=body.pause_mode,
            actor=caller_of(request).name,
        )
    )
    state.engine.wake()
    return JSONResponse(release_json(release), status_code=201)


async def promote(request: Request) -> JSONResponse:
    """Release to ``to`` exactly the image digest ``from`` runs (P2): with ``to``'s own
    configuration, awaiting approval when ``to`` is protected."""
    state = state_of(request)
    body = await parse_json(request, PromotionIn)
    release = await run_in_threadpool(
        functools.partial(
            promotion.promote,
            state.store,
            registry_check.holds,
            request.path_params["name"],
            body.source,
            body.target,
            batches=body.batches,
            grouping=None if body.batches else body.grouping or Grouping.TWO_GROUPS,
            pause_mode=body.pause_mode,
            actor=caller_of(request).name,
        )
    )
    state.engine.wake()
    return JSONResponse(release_json(release), status_code=201)


async def restart(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await parse_json(request, RestartIn)
    release = await run_in_threadpool(
        functools.partial(
            operations.restart,
            state.store,
            request.path_params["name"],
            request.path_params["environment"],
            batches=body.batches,
            grouping=body.grouping if body.batches is None else None,
            pause_mode=body.pause_mode,
            actor=caller_of(request).name,
        )
    )
    state.engine.wake()
    return JSONResponse(release_json(release), status_code=201)


async def instance_logs(request: Request) -> JSONResponse:
    """The last ``?tail=`` lines (default 100) of an instance's container, asked of a
    runner serving the environment: 502 when none answers within 10 s."""
    state = state_of(request)
    tail = query_int(request, "tail", 100, 1, 10_000)
    text = await run_in_threadpool(
        operations.instance_logs,
        state.store,
        state.queue,
        request.path_params["name"],
        request.path_params["environment"],
        request.path_params["instance"],
        tail,
    )
    return JSONResponse({"instance": request.path_params["instance"], "logs": text})


async def history(request: Request) -> JSONResponse:
    state = state_of(request)
    project = await run_in_threadpool(state.store.projects.by_name, request.path_params["name"])
    found = await run_in_threadpool(
        state.store.releases.of_environment, project.id, request.path_params["environment"]
    )
    return JSONResponse(
        {
            "current_version": usecase.current_version(found),
            "releases": [release_json(release) for release in found],
        }
    )


async def show(request: Request) -> JSONResponse:
    state = state_of(request)
    release_id = path_int(request, "release_id")
    release = await run_in_threadpool(state.store.releases.get, release_id)
    instances = await run_in_threadpool(state.store.releases.instances, release_id)
    down_since = state.engine.board.down_since(REDIS)
    waiting = await run_in_threadpool(release_waits, state.store, release, utcnow(), down_since)
    body = release_json(release, instances, waiting)
    approval = await run_in_threadpool(approval_state, state.store, release)
    if approval is not None:
        body["approval"] = {
            "needed": approval.needed,
            "approved_by": approval.approved_by,
            "may_approve": approval.may_approve,
        }
    return JSONResponse(body)


async def _act(request: Request, action: Any, *args: Any, even_share: bool = False) -> JSONResponse:
    state = state_of(request)
    call = functools.partial(
        action, state.store, path_int(request, "release_id"), *args, caller_of(request).name
    )
    release = await run_in_threadpool(call)
    if even_share:  # it goes on, or ended: traffic weights set while paused are undone
        await run_in_threadpool(operations.clear_traffic_share, state.store, state.weights, release)
    state.engine.wake()
    return JSONResponse(release_json(release))


async def pause(request: Request) -> JSONResponse:
    return await _act(request, usecase.pause)


async def resume(request: Request) -> JSONResponse:
    return await _act(request, usecase.resume, even_share=True)


async def close(request: Request) -> JSONResponse:
    return await _act(request, usecase.close, even_share=True)


async def traffic(request: Request) -> JSONResponse:
    """Give the instances the release replaced so far a share of the requests (L6)."""
    state = state_of(request)
    body = await parse_json(request, TrafficIn)
    release_id = path_int(request, "release_id")
    chosen = await run_in_threadpool(
        operations.set_traffic_share,
        state.store,
        state.weights,
        release_id,
        body.new_share,
        caller_of(request).name,
    )
    return JSONResponse({"release_id": release_id, "new_share": body.new_share, "weights": chosen})


async def retry(request: Request) -> JSONResponse:
    return await _act(request, usecase.retry_failed)


async def switch_mode(request: Request) -> JSONResponse:
    body = await parse_json(request, ModeIn)
    return await _act(request, usecase.switch_mode, body.pause_mode)
