"""Retry a failed or canceled job, or every failed job of a pipeline.

A retry is a new attempt of the job, with a new id and log; the old attempt keeps
its log and is marked retried. The jobs a failure had skipped get new attempts
too, so the rest of the pipeline runs again once the retried jobs succeed.
"""

from __future__ import annotations

from pipelines.errors import Conflict
from pipelines.model import Job, Pipeline
from pipelines.schedule import current_attempts
from pipelines.status import Status
from server.store import Store

RETRYABLE = (Status.FAILED, Status.CANCELED)


def retry_job(store: Store, job_id: int, actor: str) -> Job:
    job = store.jobs.get(job_id)
    if job.status not in RETRYABLE:
        raise Conflict(f"job {job_id} is {job.status}: only a failed or canceled job is retried")
    attempt = store.jobs.new_attempt(job_id, played_by=actor)
    _reopen_skipped(store, job.pipeline_id, actor)
    store.audit.record(actor, "job.retry", "created", f"job {job_id}", {"new_job": attempt.id})
    store.pipelines.settle(job.pipeline_id)
    return attempt


def retry_pipeline(store: Store, pipeline_id: int, actor: str) -> Pipeline:
    """New attempts of every failed or canceled job of the pipeline."""
    jobs = current_attempts(store.jobs.of_pipeline(pipeline_id))
    retryable = [job for job in jobs if job.status in RETRYABLE]
    if not retryable:
        status = store.pipelines.get(pipeline_id).status
        raise Conflict(f"pipeline {pipeline_id} is {status} and has no failed or canceled job")
    created = []
    for job in retryable:
        try:
            created.append(store.jobs.new_attempt(job.id, played_by=actor).id)
        except Conflict:
            continue  # retried meanwhile
    _reopen_skipped(store, pipeline_id, actor)
    store.audit.record(
        actor, "pipeline.retry", "created", f"pipeline {pipeline_id}", {"new_jobs": created}
    )
    store.pipelines.settle(pipeline_id)
    return store.pipelines.get(pipeline_id)


def _reopen_skipped(store: Store, pipeline_id: int, actor: str) -> None:
    for job in current_attempts(store.jobs.of_pipeline(pipeline_id)):
        if job.status is Status.SKIPPED:
            try:
                store.jobs.new_attempt(job.id, played_by=None)
            except Conflict:
                continue
