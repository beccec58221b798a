"""The runners' side of the API: a runner reports start, output and end of a job.

Authenticated with the runner token, by the route (server/access.py): the shared one
speaks for any runner, a runner's own only for that runner. Every call is
safe to repeat: a start is taken once, an append names its offset, a finish already
recorded is accepted.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from pipelines.errors import PayloadError
from pipelines.job_log import MAX_APPEND_BYTES
from pipelines.model import BuiltImage
from pipelines.release import InstanceStatus, ReleaseStatus
from pipelines.status import FailureKind
from server.access import speaks_for
from server.http import BIGINT_MAX, INTEGER_MAX, parse_json, path_int, read_body
from server.json_body import decode_json
from server.serialize import image_json, job_json
from server.state import state_of
from server.usecases.junit_reports import MAX_REPORT_BYTES, attach_junit
from server.usecases.release_operations import clear_traffic_share
from server.usecases.releases import (
    batch_done,
    claim_batch,
    report_instance,
)
from server.usecases.report import append_log, finish_job, record_image, start_job
from server.usecases.runner_liveness import record_heartbeat
from server.usecases.scan_reports import MAX_SCAN_BYTES, attach_scan, judge_scan


class StartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    runner: str = Field(min_length=1, max_length=255)


class HeartbeatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    runner: str = Field(min_length=1, max_length=255)
    queues: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        min_length=1, max_length=100
    )
    host: str = Field(min_length=1, max_length=255)
    pid: int = Field(ge=1, le=INTEGER_MAX)
    job_id: int | None = Field(default=None, ge=1, le=INTEGER_MAX)
    problem: str | None = Field(default=None, max_length=2000)  # what it waits for


class ImageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    repository: str = Field(min_length=1, max_length=500)
    tag: str = Field(min_length=1, max_length=128)
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$", max_length=71)
    middleware: str | None = Field(default=None, max_length=500)
    pushed_bytes: int = Field(ge=0, le=BIGINT_MAX)
    app_layer_bytes: int | None = Field(default=None, ge=0, le=BIGINT_MAX)
    runtime_mounts: list[dict[str, Any]] = Field(default_factory=list, max_length=100)


class FinishIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    succeeded: bool
    exit_code: int | None = Field(default=None, ge=-INTEGER_MAX - 1, le=INTEGER_MAX)
    failure_kind: FailureKind | None = None
    failure_reason: str | None = Field(default=None, max_length=10_000)


async def heartbeat(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await parse_json(request, HeartbeatIn)
    speaks_for(request, body.runner)
    runner = await run_in_threadpool(
        record_heartbeat,
        state.store,
        body.runner,
        tuple(body.queues),
        body.host,
        body.pid,
        body.job_id,
        body.problem,
    )
    return JSONResponse({"runner": runner.name, "last_seen": runner.last_seen.isoformat()})


async def start(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await parse_json(request, StartIn)
    speaks_for(request, body.runner)
    job, secrets = await run_in_threadpool(
        start_job, state.store, state.secret_box, path_int(request, "job_id"), body.runner
    )
    state.engine.wake()
    # The secrets' values travel only here, to the runner that executes the job.
    return JSONResponse({"job": job_json(job), "secrets": secrets})


async def append(request: Request) -> JSONResponse:
    state = state_of(request)
    job_id = path_int(request, "job_id")
    raw_offset = request.query_params.get("offset", "")
    if not raw_offset.isdigit():
        raise PayloadError("offset must be a whole number", "offset")
    body = await read_body(request, MAX_APPEND_BYTES)
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise PayloadError("a log append must be UTF-8 text", "body") from exc
    length = await run_in_threadpool(append_log, state.store, job_id, int(raw_offset), text)
    state.logs.notify(job_id)
    return JSONResponse({"length": length})


async def image(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await parse_json(request, ImageIn)
    job_id = path_int(request, "job_id")
    recorded = await run_in_threadpool(
        record_image,
        state.store,
        job_id,
        BuiltImage(
            pipeline_id=0,  # the job's, set by the use case
            job_id=job_id,
            repository=body.repository,
            tag=body.tag,
            digest=body.digest,
            middleware=body.middleware,
            pushed_bytes=body.pushed_bytes,
            app_layer_bytes=body.app_layer_bytes,
            runtime_mounts=tuple(body.runtime_mounts),
        ),
    )
    return JSONResponse(image_json(recorded), status_code=201)


async def junit_report(request: Request) -> JSONResponse:
    state = state_of(request)
    job_id = path_int(request, "job_id")
    name = request.query_params.get("name", "")
    body = await read_body(request, MAX_REPORT_BYTES)
    counts = await run_in_threadpool(attach_junit, state.store, job_id, name, body)
    return JSONResponse(asdict(counts), status_code=201)


async def scan_report(request: Request) -> JSONResponse:
    state = state_of(request)
    job_id = path_int(request, "job_id")
    analyser = request.query_params.get("analyser", "")
    body = await read_body(request, MAX_SCAN_BYTES)
    try:  # the boundary's checks (UTF-8, depth, text, numbers) before a reader parses it
        decode_json(body)
    except PayloadError as exc:
        raise PayloadError(str(exc), "report") from exc
    findings = await run_in_threadpool(attach_scan, state.store, job_id, analyser, body)
    return JSONResponse({"findings": findings}, status_code=201)


async def gate(request: Request) -> JSONResponse:
    state = state_of(request)
    verdict = await run_in_threadpool(judge_scan, state.store, path_int(request, "job_id"))
    return JSONResponse(asdict(verdict))


class InstanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: InstanceStatus
    log: str = Field(max_length=200_000)


class BatchClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    runner: str = Field(min_length=1, max_length=255)
    handout: int = Field(ge=0, le=INTEGER_MAX)


class BatchDoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    failure: str | None = Field(default=None, max_length=10_000)


async def release_instance(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await parse_json(request, InstanceIn)
    release_id = path_int(request, "release_id")
    await run_in_threadpool(
        report_instance, state.store, release_id, request.path_params["name"], body.status, body.log
    )
    return JSONResponse({"release_id": release_id, "status": body.status.value})


async def release_batch_start(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await parse_json(request, BatchClaimIn)
    speaks_for(request, body.runner)
    release = await run_in_threadpool(
        claim_batch,
        state.store,
        path_int(request, "release_id"),
        path_int(request, "batch"),
        body.handout,
        body.runner,
    )
    return JSONResponse({"release_id": release.id, "status": release.status.value})


async def release_batch_done(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await parse_json(request, BatchDoneIn)
    release = await run_in_threadpool(
        batch_done,
        state.store,
        path_int(request, "release_id"),
        path_int(request, "batch"),
        body.failure,
    )
    if release.status is not ReleaseStatus.PAUSED:
        await run_in_threadpool(clear_traffic_share, state.store, state.weights, release)
    state.engine.wake()
    return JSONResponse({"release_id": release.id, "status": release.status.value})


async def finish(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await parse_json(request, FinishIn)
    job_id = path_int(request, "job_id")
    job = await run_in_threadpool(
        finish_job,
        state.store,
        job_id,
        body.succeeded,
        body.exit_code,
        body.failure_kind,
        body.failure_reason,
    )
    state.logs.notify(job_id)
    state.engine.wake()
    return JSONResponse(job_json(job))
