"""Read a new pipeline's file at its commit and store its jobs."""

from __future__ import annotations

import logging

from pipelines.errors import Conflict, ExternalError, NotFound, SpecError
from pipelines.model import Pipeline, RefKind
from pipelines.plan import PipelineContext, plan_jobs
from pipelines.ports import JobQueue, SourceRepository
from pipelines.spec import FILE_NAME, parse_spec
from pipelines.status import Status
from server.store import Store
from server.usecases.cancel import cancel_pipeline

log = logging.getLogger(__name__)


def plan_pipeline(
    store: Store, sources: SourceRepository, queue: JobQueue, pipeline_id: int
) -> bool:
    """Plan one pipeline. Returns False when git could not be reached, so the
    engine tries again later; a missing or invalid file fails the pipeline, and a
    pipeline whose rules keep no job is skipped."""
    pipeline = store.pipelines.get(pipeline_id)
    project = store.projects.get(pipeline.project_id)
    try:
        text = sources.read_file(project.clone_url, pipeline.sha, FILE_NAME)
    except NotFound as exc:
        store.pipelines.end_unplanned(pipeline_id, Status.FAILED, str(exc))
        return True
    except ExternalError as exc:
        log.warning("pipeline %s: cannot read %s yet: %s", pipeline_id, FILE_NAME, exc)
        return False
    if text is None:
        store.pipelines.end_unplanned(
            pipeline_id, Status.FAILED, f"{FILE_NAME} not found at {pipeline.sha}"
        )
        return True
    context = PipelineContext(pipeline.ref, pipeline.source)
    try:
        drafts = plan_jobs(parse_spec(text), context)
    except SpecError as exc:
        store.pipelines.end_unplanned(pipeline_id, Status.FAILED, f"{FILE_NAME}: {exc}")
        return True
    if not drafts:
        store.pipelines.end_unplanned(
            pipeline_id, Status.SKIPPED, f"the rules of {FILE_NAME} keep no job for this pipeline"
        )
        return True
    store.pipelines.add_jobs(pipeline_id, drafts)
    if project.supersede and pipeline.ref.kind is RefKind.BRANCH:
        supersede_older(store, queue, pipeline)
    return True


def supersede_older(store: Store, queue: JobQueue, newer: Pipeline) -> list[int]:
    """Cancel the older pipelines of the same branch that have not started a job."""
    canceled = []
    for older in store.pipelines.older_open(newer):
        jobs = store.jobs.of_pipeline(older.id)
        if any(job.status is Status.RUNNING or job.started_at is not None for job in jobs):
            continue  # it started: let it finish
        try:
            cancel_pipeline(store, queue, older.id, "engine", f"superseded by pipeline {newer.id}")
        except Conflict:
            continue
        canceled.append(older.id)
    return canceled
