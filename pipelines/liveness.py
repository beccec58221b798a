"""When a runner counts as gone, and which running jobs it takes down with it.

Runners send a heartbeat every ``HEARTBEAT_SECONDS`` naming the job they execute. A
running job is lost when its runner has been silent for ``OFFLINE_AFTER`` (the whole
runner died), or when its runner keeps beating but has not named the job for
``OFFLINE_AFTER`` since the job started (the job's process died under a live
runner). Pure: the caller supplies the clock.

Silence counts only while the server could hear: ``heard_since`` is when the server
(re)gained its database, so heartbeats refused while it was down or restarting
never make a live runner look lost.
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


def is_online(runner: Runner, now: datetime, heard_since: datetime | None = None) -> bool:
    last = runner.last_seen if heard_since is None else max(runner.last_seen, heard_since)
    return now - last <= OFFLINE_AFTER


def lost_jobs(
    running: Iterable[Job],
    runners: Mapping[str, Runner],
    now: datetime,
    heard_since: datetime | None = None,
) -> list[LostJob]:
    """``heard_since``: since when the server could record heartbeats (its start, or
    its database's return). Silence before it is not counted: heartbeats sent while
    it could not hear never arrived, and a job that ended meanwhile is reported once
    it is back."""
    lost = []
    for job in running:
        started = job.started_at or job.created_at
        if heard_since is not None:
            started = max(started, heard_since)
        if now - started <= OFFLINE_AFTER:
            continue  # too early to tell: the first heartbeat naming it may be on its way
        runner = runners.get(job.runner or "")
        if runner is None or not is_online(runner, now, heard_since):
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
    release: Release,
    runners: Mapping[str, Runner],
    task: TaskState,
    now: datetime,
    heard_since: datetime | None = None,
) -> str | None:
    """Why the claimed batch in flight of ``release`` will never be reported (its
    runner died, or its task ended without a report), or None while it still may.

    A task the queue no longer has proves nothing once claimed: a Redis restarted
    without its data forgets tasks whose runners go on and report; their
    heartbeats decide."""
    if not release.batch_in_flight or release.batch_runner is None:
        return None
    batch = f"batch {release.next_batch + 1}"
    if task is TaskState.ENDED:
        return f"runner lost: the task of {batch} on {release.batch_runner} ended without a report"
    claimed = release.batch_claimed_at
    if claimed is not None and heard_since is not None:
        claimed = max(claimed, heard_since)
    if claimed is None or now - claimed <= OFFLINE_AFTER:
        return None  # too early to tell
    runner = runners.get(release.batch_runner)
    if runner is None or not is_online(runner, now, heard_since):
        return f"runner lost: no heartbeat from {release.batch_runner} during {batch}"
    return None
