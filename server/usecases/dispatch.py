"""Move a pipeline forward: retry what retries on its own, skip what will never
run, park manual jobs, hand ready jobs to runners, and settle the status."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from pipelines.errors import Conflict, ExternalError
from pipelines.liveness import needs_requeue
from pipelines.model import Job, JobTask
from pipelines.ports import JobQueue
from pipelines.retry import retries_automatically
from pipelines.schedule import current_attempts, next_steps
from pipelines.status import Status
from server.store import Store
from server.usecases.deploy_jobs import RELEASING, deployed_variables, start_deploy

log = logging.getLogger(__name__)


def advance_pipeline(store: Store, queue: JobQueue, pipeline_id: int) -> Status:
    jobs = store.jobs.of_pipeline(pipeline_id)
    if _retry_automatically(store, current_attempts(jobs)):
        jobs = store.jobs.of_pipeline(pipeline_id)
    held: dict[str, int] = {}
    if any(job.environment for job in jobs):
        held = store.environments.held(store.pipelines.get(pipeline_id).project_id)
    decision = next_steps(jobs, held.keys())
    for job_id in decision.skip:
        _change(store, job_id, Status.SKIPPED)
    for job_id in decision.manual:
        _change(store, job_id, Status.MANUAL)
    for job_id in decision.start:
        if _change(store, job_id, Status.PENDING):
            job = store.jobs.get(job_id)
            if job.kind in RELEASING:
                start_deploy(store, job)  # the server runs deploy jobs itself
            else:
                _enqueue(store, queue, job_id)
    return store.pipelines.settle(pipeline_id)


def _change(store: Store, job_id: int, target: Status) -> bool:
    try:
        store.jobs.change_status(job_id, target, expect=Status.CREATED)
    except Conflict:
        return False  # changed meanwhile, or its environment was taken: next pass
    return True


def _enqueue(store: Store, queue: JobQueue, job_id: int) -> None:
    job = store.jobs.get(job_id)
    try:
        queue.enqueue(job.queue, task_of(store, job))
    except ExternalError as exc:
        # The job is pending in the database; requeue_lost_tasks enqueues it later.
        log.warning("job %s: not enqueued yet: %s", job_id, exc)


def task_of(store: Store, job: Job) -> JobTask:
    """What a runner gets for the job: with, after a deploy, where it went."""
    task = store.jobs.task(job.id)
    deployed = deployed_variables(store, job)
    return replace(task, variables=task.variables | deployed) if deployed else task


def _retry_automatically(store: Store, jobs: list[Job]) -> bool:
    retried = False
    for job in jobs:
        if not retries_automatically(job):
            continue
        try:
            attempt = store.jobs.new_attempt(job.id)
        except Conflict:
            continue  # someone retried it by hand meanwhile
        store.audit.record(
            "engine",
            "job.retry",
            "automatic",
            f"job {job.id}",
            {"failure": job.failure_kind, "new_job": attempt.id, "attempt": attempt.attempt},
        )
        retried = True
    return retried


def requeue_pending(store: Store, queue: JobQueue) -> int:
    """Enqueue every pending job again, for a server that stopped between marking a
    job pending and enqueuing it. Jobs still queued are not queued twice."""
    pending = [job for job in store.jobs.with_status(Status.PENDING) if job.kind not in RELEASING]
    for job in pending:
        queue.enqueue(job.queue, task_of(store, job))
    return len(pending)


def requeue_lost_tasks(store: Store, queue: JobQueue, now: datetime) -> list[int]:
    """Queue again the pending jobs whose task the queue lost, or that a runner
    took and died with before claiming; return their ids."""
    requeued = []
    for job in store.jobs.with_status(Status.PENDING):
        if job.kind in RELEASING:
            continue  # no task: the server runs it
        state, taken_at = queue.task_state(job.id)
        if not needs_requeue(state, taken_at, now):
            continue
        queue.drop(job.id)
        queue.enqueue(job.queue, task_of(store, job))
        log.warning("job %s: its task was %s; queued it again", job.id, state.value)
        requeued.append(job.id)
    return requeued
