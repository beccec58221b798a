"""What a pipeline leaves: its test results, its artifacts (reports, image digests)."""

from __future__ import annotations

from dataclasses import asdict

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pipelines.junit import Counts, Outcome
from server.http import path_int
from server.serialize import image_json
from server.state import state_of


async def pipeline_tests(request: Request) -> JSONResponse:
    """Counts over the latest attempt of every job, and each test that did not pass."""
    state = state_of(request)
    pipeline_id = path_int(request, "pipeline_id")
    await run_in_threadpool(state.store.pipelines.get, pipeline_id)  # 404 first
    stored = await run_in_threadpool(state.store.artifacts.cases_of_pipeline, pipeline_id)
    counts = Counts.of(item.case for item in stored)
    failures = [
        {
            "job_id": item.job_id,
            "job": item.job_name,
            "suite": item.case.suite,
            "classname": item.case.classname,
            "name": item.case.name,
            "outcome": item.case.outcome.value,
            "message": item.case.message,
        }
        for item in stored
        if item.case.outcome in (Outcome.FAILED, Outcome.ERROR)
    ]
    return JSONResponse({**asdict(counts), "failures": failures})


async def list_artifacts(request: Request) -> JSONResponse:
    state = state_of(request)
    pipeline_id = path_int(request, "pipeline_id")
    await run_in_threadpool(state.store.pipelines.get, pipeline_id)
    found = await run_in_threadpool(state.store.artifacts.of_pipeline, pipeline_id)
    images = await run_in_threadpool(state.store.images.of_pipeline, pipeline_id)
    listed = [
        {
            "id": artifact.id,
            "job_id": artifact.job_id,
            "kind": artifact.kind,
            "name": artifact.name,
            "media_type": artifact.media_type,
            "size": artifact.size,
            "url": f"/api/artifacts/{artifact.id}",
            "created_at": artifact.created_at.isoformat(),
        }
        for artifact in found
    ]
    listed += [{"kind": "image", **image_json(image)} for image in images]
    return JSONResponse(listed)


async def download(request: Request) -> Response:
    state = state_of(request)
    artifact, content = await run_in_threadpool(
        state.store.artifacts.content, path_int(request, "artifact_id")
    )
    filename = artifact.name.rsplit("/", 1)[-1].replace('"', "")
    return Response(
        content,
        media_type=artifact.media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
