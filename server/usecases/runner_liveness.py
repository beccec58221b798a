"""Runner heartbeats, and failing the jobs of runners that are gone."""

from __future__ import annotations

from datetime import datetime

from pipelines.errors import Conflict
from pipelines.liveness import LostJob, lost_jobs
from pipelines.model import Runner
from pipelines.status import FailureKind, Status
from server.store import Store


def record_heartbeat(
    store: Store,
    name: str,
    queues: tuple[str, ...],
    host: str,
    pid: int,
    job_id: int | None,
    problem: str | None = None,
) -> Runner:
    return store.runners.heartbeat(name, queues, host, pid, job_id, problem)


def fail_lost_jobs(
    store: Store, now: datetime, heard_since: datetime | None = None
) -> list[LostJob]:
    """Mark failed every running job whose runner is gone; return what was failed.
    Silence before ``heard_since`` (the server could not record heartbeats) is not
    counted."""
    runners = {runner.name: runner for runner in store.runners.all()}
    failed = []
    # Deploy jobs run in the server, not on a runner: they follow their release.
    running = [job for job in store.jobs.with_status(Status.RUNNING) if job.kind != "deploy"]
    for lost in lost_jobs(running, runners, now, heard_since):
        try:
            store.jobs.change_status(
                lost.job_id,
                Status.FAILED,
                expect=Status.RUNNING,
                failure_kind=FailureKind.RUNNER_LOST.value,
                failure_reason=lost.reason,
            )
        except Conflict:
            continue  # it finished meanwhile: its runner was not lost after all
        store.audit.record(
            "engine", "job.lost", "failed", f"job {lost.job_id}", {"reason": lost.reason}
        )
        failed.append(lost)
    return failed
