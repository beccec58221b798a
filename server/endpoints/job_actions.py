"""Steering jobs and pipelines: cancel, retry, play."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from server.access import caller_of
from server.http import path_int
from server.serialize import job_json, pipeline_json
from server.state import AppState, state_of
from server.usecases.cancel import cancel_job, cancel_pipeline
from server.usecases.play import play_job
from server.usecases.retry import retry_job, retry_pipeline


async def _pipeline_answer(state: AppState, pipeline_id: int, status_code: int) -> JSONResponse:
    pipeline = await run_in_threadpool(state.store.pipelines.get, pipeline_id)
    jobs = await run_in_threadpool(state.store.jobs.of_pipeline, pipeline_id)
    return JSONResponse(pipeline_json(pipeline, jobs), status_code=status_code)


async def cancel_one_job(request: Request) -> JSONResponse:
    state = state_of(request)
    job = await run_in_threadpool(
        cancel_job, state.store, state.queue, path_int(request, "job_id"), caller_of(request).name
    )
    state.logs.notify(job.id)
    state.engine.wake()
    return JSONResponse(job_json(job))


async def retry_one_job(request: Request) -> JSONResponse:
    state = state_of(request)
    attempt = await run_in_threadpool(
        retry_job, state.store, path_int(request, "job_id"), caller_of(request).name
    )
    state.engine.wake()
    return JSONResponse(job_json(attempt), status_code=201)


async def play_one_job(request: Request) -> JSONResponse:
    state = state_of(request)
    job = await run_in_threadpool(
        play_job, state.store, path_int(request, "job_id"), caller_of(request).name
    )
    state.engine.wake()
    return JSONResponse(job_json(job))


async def cancel_whole_pipeline(request: Request) -> JSONResponse:
    state = state_of(request)
    pipeline_id = path_int(request, "pipeline_id")
    await run_in_threadpool(
        cancel_pipeline, state.store, state.queue, pipeline_id, caller_of(request).name
    )
    for job in await run_in_threadpool(state.store.jobs.of_pipeline, pipeline_id):
        state.logs.notify(job.id)
    state.engine.wake()
    return await _pipeline_answer(state, pipeline_id, 200)


async def retry_failed_jobs(request: Request) -> JSONResponse:
    state = state_of(request)
    pipeline_id = path_int(request, "pipeline_id")
    await run_in_threadpool(retry_pipeline, state.store, pipeline_id, caller_of(request).name)
    state.engine.wake()
    return await _pipeline_answer(state, pipeline_id, 201)
