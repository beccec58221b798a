"""Projects: register, list, show; and trigger a pipeline by hand."""

from __future__ import annotations

import functools
import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from pipelines.model import GitRef, RefKind
from server.access import caller_of
from server.http import parse_json
from server.serialize import pipeline_json, project_json
from server.state import state_of
from server.usecases.trigger import trigger_pipeline

_NAME = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
# A glob of branch or tag names; a project lists a few.
Glob = Annotated[str, Field(min_length=1, max_length=255)]
MAX_GLOBS = 100


class ProjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=_NAME, max_length=100)
    clone_url: str = Field(min_length=1, max_length=1000)
    gitlab_path: str | None = Field(default=None, min_length=1, max_length=255)
    webhook_secret: str = Field(min_length=16, max_length=255)
    branches: list[Glob] = Field(default_factory=lambda: ["*"], max_length=MAX_GLOBS)
    tags: list[Glob] = Field(default_factory=lambda: ["*"], max_length=MAX_GLOBS)
    supersede: bool = False

    @model_validator(mode="after")
    def _clone_url_is_not_an_option(self) -> ProjectIn:
        # git would read "-u..." as an option; Shipway passes "--" too, but refuse early.
        if self.clone_url.startswith("-") or re.search(r"\s", self.clone_url):
            raise ValueError("clone_url must be a URL or a path")
        return self


class ProjectChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    branches: list[Glob] | None = Field(default=None, max_length=MAX_GLOBS)
    tags: list[Glob] | None = Field(default=None, max_length=MAX_GLOBS)
    supersede: bool | None = None


class TriggerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    branch: str | None = Field(default=None, min_length=1, max_length=255)
    tag: str | None = Field(default=None, min_length=1, max_length=255)
    commit: str | None = Field(default=None, min_length=1, max_length=40)

    @model_validator(mode="after")
    def _exactly_one(self) -> TriggerIn:
        given = [name for name in ("branch", "tag", "commit") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("give exactly one of branch, tag or commit")
        return self

    def ref(self) -> GitRef:
        if self.branch:
            return GitRef(RefKind.BRANCH, self.branch)
        if self.tag:
            return GitRef(RefKind.TAG, self.tag)
        assert self.commit is not None
        return GitRef(RefKind.COMMIT, self.commit.lower())


async def create_project(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await parse_json(request, ProjectIn)
    project = await run_in_threadpool(
        state.store.projects.create,
        body.name,
        body.clone_url,
        body.gitlab_path or body.name,
        body.webhook_secret,
        tuple(body.branches),
        tuple(body.tags),
        body.supersede,
    )
    await run_in_threadpool(
        state.store.audit.record, caller_of(request).name, "project.create", "created", project.name
    )
    return JSONResponse(project_json(project), status_code=201)


async def list_projects(request: Request) -> JSONResponse:
    state = state_of(request)
    projects = await run_in_threadpool(state.store.projects.all)
    readable = caller_of(request).readable()
    return JSONResponse([project_json(p) for p in projects if readable is None or p.id in readable])


async def get_project(request: Request) -> JSONResponse:
    state = state_of(request)
    project = await run_in_threadpool(state.store.projects.by_name, request.path_params["name"])
    return JSONResponse(project_json(project))


async def trigger(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await parse_json(request, TriggerIn)
    pipeline = await run_in_threadpool(
        trigger_pipeline,
        state.store,
        state.sources,
        request.path_params["name"],
        body.ref(),
        caller_of(request).name,
    )
    state.engine.wake()
    return JSONResponse(pipeline_json(pipeline), status_code=201)


async def update_project(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await parse_json(request, ProjectChange)
    project = await run_in_threadpool(
        functools.partial(
            state.store.projects.update,
            request.path_params["name"],
            branches=tuple(body.branches) if body.branches is not None else None,
            tags=tuple(body.tags) if body.tags is not None else None,
            supersede=body.supersede,
        )
    )
    await run_in_threadpool(
        state.store.audit.record,
        caller_of(request).name,
        "project.update",
        "updated",
        project.name,
        body.model_dump(exclude_none=True),
    )
    return JSONResponse(project_json(project))


async def environments(request: Request) -> JSONResponse:
    """The environments held now, and by which job."""
    state = state_of(request)
    project = await run_in_threadpool(state.store.projects.by_name, request.path_params["name"])
    held = await run_in_threadpool(state.store.environments.held, project.id)
    return JSONResponse(
        [{"environment": name, "held_by_job": job_id} for name, job_id in sorted(held.items())]
    )
