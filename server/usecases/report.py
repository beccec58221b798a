"""What a runner reports about the job it executes: started, output, finished."""

from __future__ import annotations

from pipelines.errors import Conflict
from pipelines.model import Job
from pipelines.status import Status
from server.store import Store


def start_job(store: Store, job_id: int, runner: str) -> Job:
    """A runner took the job. Conflict if the job is no longer pending (canceled,
    or taken by another runner): the runner must then not execute it."""
    return store.jobs.change_status(job_id, Status.RUNNING, expect=Status.PENDING, runner=runner)


def append_log(store: Store, job_id: int, offset: int, text: str) -> int:
    job = store.jobs.get(job_id)
    if job.status is not Status.RUNNING:
        raise Conflict(f"job {job_id} is {job.status}: its log is closed")
    return store.logs.append(job_id, offset, text)


def finish_job(
    store: Store, job_id: int, succeeded: bool, exit_code: int | None, reason: str | None
) -> Job:
    target = Status.SUCCESS if succeeded else Status.FAILED
    job = store.jobs.get(job_id)
    if job.status is target and job.exit_code == exit_code:
        return job  # a resend of a report the server already took
    return store.jobs.change_status(
        job_id, target, expect=Status.RUNNING, exit_code=exit_code, failure_reason=reason
    )
