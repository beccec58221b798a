"""Pipelines and jobs: list, show, and a job's log, whole or live."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import asdict

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse

from pipelines.errors import Forbidden, PayloadError
from pipelines.junit import Counts
from pipelines.liveness import is_online
from pipelines.model import Job
from pipelines.roles import Permission
from pipelines.status import Status
from server.access import caller_of
from server.dependencies import REDIS
from server.http import path_int, query_int
from server.serialize import job_json, pipeline_json, runner_json
from server.state import AppState, state_of
from server.store.tables import utcnow
from server.usecases.waiting import job_waits, pipeline_wait

KEEPALIVE_SECONDS = 15.0
# The most characters of a log read from the store at once (a piece of a response
# or one event of the stream, at most 1 MB): what reading a log costs in memory.
LOG_PIECE = 1 << 18


async def list_pipelines(request: Request) -> JSONResponse:
    state = state_of(request)
    limit = query_int(request, "limit", 50, 1, 500)
    project_id = None
    caller = caller_of(request)
    if name := request.query_params.get("project"):
        project_id = (await run_in_threadpool(state.store.projects.by_name, name)).id
        if not caller.may(Permission.READ, project_id):
            raise Forbidden(f"{caller.name} may not read in project {name}")
    status = None
    if raw := request.query_params.get("status"):
        try:
            status = Status(raw)
        except ValueError:
            raise PayloadError(f"status must be one of {', '.join(Status)}", "status") from None
    found = await run_in_threadpool(
        state.store.pipelines.recent, project_id, status, limit, caller.readable()
    )
    return JSONResponse([pipeline_json(pipeline) for pipeline in found])


async def get_pipeline(request: Request) -> JSONResponse:
    state = state_of(request)
    pipeline_id = path_int(request, "pipeline_id")
    pipeline = await run_in_threadpool(state.store.pipelines.get, pipeline_id)
    jobs = await run_in_threadpool(state.store.jobs.of_pipeline, pipeline_id)
    images = await run_in_threadpool(state.store.images.of_pipeline, pipeline_id)
    cases = await run_in_threadpool(state.store.artifacts.cases_of_pipeline, pipeline_id)
    waits = await _waits(state, jobs)
    body = pipeline_json(pipeline, jobs, images, waits, pipeline_wait(jobs, waits))
    body["tests"] = asdict(Counts.of(item.case for item in cases))
    return JSONResponse(body)


async def list_jobs(request: Request) -> JSONResponse:
    state = state_of(request)
    pipeline_id = path_int(request, "pipeline_id")
    await run_in_threadpool(state.store.pipelines.get, pipeline_id)  # 404 for no pipeline
    jobs = await run_in_threadpool(state.store.jobs.of_pipeline, pipeline_id)
    waits = await _waits(state, jobs)
    return JSONResponse([job_json(job, waits.get(job.id)) for job in jobs])


async def list_runners(request: Request) -> JSONResponse:
    state = state_of(request)
    runners = await run_in_threadpool(state.store.runners.all)
    now = utcnow()
    return JSONResponse([runner_json(runner, is_online(runner, now)) for runner in runners])


async def get_job(request: Request) -> JSONResponse:
    state = state_of(request)
    job = await run_in_threadpool(state.store.jobs.get, path_int(request, "job_id"))
    context = [job]
    if job.status is Status.CREATED:  # what it waits for is among its pipeline's jobs
        context = await run_in_threadpool(state.store.jobs.of_pipeline, job.pipeline_id)
    waits = await _waits(state, context)
    return JSONResponse(job_json(job, waits.get(job.id)))


async def _waits(state: AppState, jobs: list[Job]) -> dict[int, str]:
    down_since = state.engine.board.down_since(REDIS)
    return await run_in_threadpool(job_waits, state.store, jobs, utcnow(), down_since)


async def job_log(request: Request) -> StreamingResponse:
    """The log as text from ``?offset=`` on, ``?limit=`` characters of it at most
    (all by default); ``X-Log-Offset`` is where what is sent ends. Streamed from the
    store a piece at a time, so a log of any size is read in a few MB of memory."""
    state = state_of(request)
    job_id = path_int(request, "job_id")
    offset = query_int(request, "offset", 0, 0, 2**62)
    limit = query_int(request, "limit", 2**62, 0, 2**62)
    length = await run_in_threadpool(state.store.logs.length, job_id)  # 404 before a body
    end = max(min(length, offset + limit), min(offset, length))
    return StreamingResponse(
        _log_pieces(state, job_id, offset, end),
        media_type="text/plain; charset=utf-8",
        headers={"X-Log-Offset": str(end)},
    )


async def _log_pieces(state: AppState, job_id: int, offset: int, end: int) -> AsyncIterator[str]:
    while offset < end:
        piece, offset = await run_in_threadpool(
            state.store.logs.read, job_id, offset, min(end - offset, LOG_PIECE)
        )
        if not piece:
            return
        yield piece


async def job_log_stream(request: Request) -> StreamingResponse:
    """Server-sent events: ``log`` events carry JSON text and the offset as id (so a
    client resumes with Last-Event-ID); one ``end`` event carries the final status."""
    state = state_of(request)
    job_id = path_int(request, "job_id")
    await run_in_threadpool(state.store.jobs.get, job_id)  # 404 before the stream opens
    resume = request.headers.get("Last-Event-ID", "")
    offset = int(resume) if resume.isdigit() else query_int(request, "offset", 0, 0, 2**62)
    return StreamingResponse(
        _log_events(state, job_id, offset),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _log_events(state: AppState, job_id: int, offset: int) -> AsyncIterator[str]:
    while True:
        job = await run_in_threadpool(state.store.jobs.get, job_id)
        # Read after the status: a finished job's log is complete, since a runner
        # sends all output before it reports the end.
        text, offset_after = await run_in_threadpool(
            state.store.logs.read, job_id, offset, LOG_PIECE
        )
        if text:
            offset = offset_after
            yield f"id: {offset}\nevent: log\ndata: {json.dumps(text)}\n\n"
        if len(text) == LOG_PIECE:
            continue  # a whole piece: more may wait, sent before the end is told
        if job.status.is_finished:
            end = {"status": job.status.value, "exit_code": job.exit_code}
            yield f"event: end\ndata: {json.dumps(end)}\n\n"
            return
        if not text:
            await state.logs.wait(job_id, KEEPALIVE_SECONDS)
            yield ": keep-alive\n\n"
