"""Play a manual job: it starts as soon as what it waits for allows."""

from __future__ import annotations

from pipelines.errors import Conflict
from pipelines.model import Job
from pipelines.status import Status
from server.store import Store


def play_job(store: Store, job_id: int, actor: str) -> Job:
    job = store.jobs.get(job_id)
    if job.status is not Status.MANUAL:
        raise Conflict(f"job {job_id} is {job.status}: only a manual job that waits is played")
    played = store.jobs.change_status(job_id, Status.CREATED, expect=Status.MANUAL, played_by=actor)
    store.audit.record(actor, "job.play", "played", f"job {job_id}", {"name": job.name})
    store.pipelines.settle(job.pipeline_id)
    return played
