"""Move a pipeline forward: skip what will never run, hand ready jobs to runners,
and settle the pipeline's status."""

from __future__ import annotations

from pipelines.errors import Conflict
from pipelines.ports import JobQueue
from pipelines.schedule import next_steps
from pipelines.status import Status
from server.store import Store


def advance_pipeline(store: Store, queue: JobQueue, pipeline_id: int) -> Status:
    decision = next_steps(store.jobs.of_pipeline(pipeline_id))
    for job_id in decision.skip:
        try:
            store.jobs.change_status(job_id, Status.SKIPPED, expect=Status.CREATED)
        except Conflict:
            continue  # someone else changed it first; the next pass sees it
    for job_id in decision.start:
        try:
            job = store.jobs.change_status(job_id, Status.PENDING, expect=Status.CREATED)
        except Conflict:
            continue
        queue.enqueue(job.queue, store.jobs.task(job_id))
    return store.pipelines.settle(pipeline_id)


def requeue_pending(store: Store, queue: JobQueue) -> int:
    """Enqueue every pending job again, for a server that stopped between marking a
    job pending and enqueuing it. Jobs still queued are not queued twice."""
    pending = store.jobs.with_status(Status.PENDING)
    for job in pending:
        queue.enqueue(job.queue, store.jobs.task(job.id))
    return len(pending)
