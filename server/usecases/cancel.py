"""Cancel a job or a whole pipeline.

A job that has not started is canceled at once and its task dropped from the
queue. A running job is marked canceled at once too; its runner learns it on its
next call to the server (at most a second later, see runners.reporting) and kills
the container, and its late reports are refused.
"""

from __future__ import annotations

import contextlib

from pipelines.errors import Conflict, ExternalError
from pipelines.model import Job, Pipeline
from pipelines.ports import JobQueue
from pipelines.schedule import current_attempts
from pipelines.status import Status
from server.store import Store
from server.usecases.releases import close


def cancel_job(store: Store, queue: JobQueue, job_id: int, actor: str) -> Job:
    job = store.jobs.get(job_id)
    if job.status.is_finished:
        raise Conflict(f"job {job_id} is {job.status}: there is nothing to cancel")
    canceled = _cancel(store, queue, job, f"canceled by {actor}")
    if canceled is None:
        raise Conflict(f"job {job_id} finished meanwhile: there is nothing to cancel")
    store.audit.record(actor, "job.cancel", "canceled", f"job {job_id}", {"was": job.status})
    store.pipelines.settle(job.pipeline_id)
    return canceled


def cancel_pipeline(
    store: Store, queue: JobQueue, pipeline_id: int, actor: str, reason: str | None = None
) -> Pipeline:
    """Cancel every job of the pipeline that has not finished."""
    pipeline = store.pipelines.get(pipeline_id)
    if pipeline.status.is_finished:
        raise Conflict(f"pipeline {pipeline_id} is {pipeline.status}: there is nothing to cancel")
    why = reason or f"canceled by {actor}"
    canceled = [
        job.id
        for job in current_attempts(store.jobs.of_pipeline(pipeline_id))
        if not job.status.is_finished and _cancel(store, queue, job, why)
    ]
    store.pipelines.note(pipeline_id, why)
    store.pipelines.settle(pipeline_id)
    store.audit.record(
        actor,
        "pipeline.cancel",
        "canceled",
        f"pipeline {pipeline_id}",
        {
            "reason": why,
            "jobs": canceled,
        },
    )
    return store.pipelines.get(pipeline_id)


def _cancel(store: Store, queue: JobQueue, job: Job, reason: str) -> Job | None:
    was = job.status
    try:
        canceled = store.jobs.change_status(
            job.id, Status.CANCELED, expect=was, failure_reason=reason
        )
    except Conflict:
        # It moved on meanwhile (a runner started it): try once more from there.
        was = store.jobs.get(job.id).status
        if was.is_finished:
            return None
        canceled = store.jobs.change_status(
            job.id, Status.CANCELED, expect=was, failure_reason=reason
        )
    if job.kind == "deploy":
        release = store.releases.of_job(job.id)
        if release is not None and release.status.is_active:
            close(store, release.id, reason.removeprefix("canceled by "))
    if was is Status.PENDING:
        # A runner that took the task already is refused: the job is not pending.
        with contextlib.suppress(ExternalError):
            queue.drop(job.id)
    return canceled
