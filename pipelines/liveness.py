"""When a runner counts as gone, and which running jobs it takes down with it.

Runners send a heartbeat every ``HEARTBEAT_SECONDS`` naming the job they execute. A
running job is lost when its runner has been silent for ``OFFLINE_AFTER`` (the whole
runner died), or when its runner keeps beating but has not named the job for
``OFFLINE_AFTER`` since the job started (the job's process died under a live
runner). Pure: the caller supplies the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipelines.model import Job, Runner
from pipelines.ports import TaskState
from pipelines.release import Release

HEARTBEAT_SECONDS = 5.0
OFFLINE_AFTER = timedelta(seconds=20)
# A runner claims a job within milliseconds of taking its task; a task taken this
# long ago whose job is still pending was taken by a runner that died.
CLAIM_WITHIN = timedelta(seconds=15)


@dataclass(frozen=True)
class LostJob:
    job_id: int
    reason: str


def is_online(runner: Runner, now: datetime) -> bool:
    return now - runner.last_seen <= OFFLINE_AFTER


def lost_jobs(
    running: Iterable[Job],
    runners: Mapping[str, Runner],
    now: datetime,
    listening_since: datetime | None = None,
) -> list[LostJob]:
    """``listening_since``: when the server started to take heartbeats. Those sent
    while it was down never arrived, so until it has listened for ``OFFLINE_AFTER``
    it judges no runner: a job that ended meanwhile is reported once it is back."""
    if listening_since is not None and now - listening_since <= OFFLINE_AFTER:
        return []
    lost = []
    for job in running:
        started = job.started_at or job.created_at
        if now - started <= OFFLINE_AFTER:
            continue  # too early to tell: the first heartbeat naming it may be on its way
        runner = runners.get(job.runner or "")
        if runner is None or not is_online(runner, now):
            lost.append(LostJob(job.id, f"runner lost: no heartbeat from {job.runner}"))
        elif runner.current_job_id != job.id and runner.last_seen - started > OFFLINE_AFTER:
            lost.append(LostJob(job.id, f"runner lost: {job.runner} no longer executes the job"))
    return lost


def needs_requeue(state: TaskState, taken_at: datetime | None, now: datetime) -> bool:
    """Whether a pending job's task must be queued again: the queue lost it, a
    runner ended it without claiming the job, or took it and died before claiming.
    Requeuing is always safe: a job is claimed once, so a second copy never runs."""
    if state in (TaskState.MISSING, TaskState.ENDED):
        return True
    if state is TaskState.STARTED:
        return taken_at is None or now - taken_at > CLAIM_WITHIN
    return False


def lost_batch(
    release: Release, runners: Mapping[str, Runner], task: TaskState, now: datetime
) -> str | None:
    """Why the claimed batch in flight of ``release`` will never be reported (its
    runner died, or its task ended without a report), or None while it still may."""
    if not release.batch_in_flight or release.batch_runner is None:
        return None
    batch = f"batch {release.next_batch + 1}"
    if task in (TaskState.ENDED, TaskState.MISSING):
        return f"runner lost: the task of {batch} on {release.batch_runner} ended without a report"
    claimed = release.batch_claimed_at
    if claimed is None or now - claimed <= OFFLINE_AFTER:
        return None  # too early to tell
    runner = runners.get(release.batch_runner)
    if runner is None or not is_online(runner, now):
        return f"runner lost: no heartbeat from {release.batch_runner} during {batch}"
    return None
