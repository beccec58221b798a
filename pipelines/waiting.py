"""Why a job or a release waits, and when waiting for a runner becomes stuck.

A created job waits for the jobs it needs (by name, or every job of the earlier
stages) that have not finished, and for manual ones nobody played. A pending job
waits for a runner serving its queue; a release's batch, handed out,
waits for a runner serving the queue named after its environment. What they wait for
is read from the runners' heartbeats: how many runners serving the queue are online,
how many of those are busy, and when the last one was heard of.

Stuck, as GitLab's stuck jobs: no runner serving the queue has been online for
``stuck_after``. The clock starts at the latest of: when the wait began, the last
heartbeat of a runner serving the queue, and ``heard_since`` (when the server could
hear heartbeats again: a server restarted or back from a database outage gives
runners time to be heard before anything is called stuck). A queue with an online
runner is never stuck, however long its jobs wait behind busy runners. Pure: the
caller supplies the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pipelines.liveness import is_online
from pipelines.model import Job, Runner
from pipelines.release import Release, ReleaseStatus
from pipelines.schedule import current_attempts, holding, upstream_of
from pipelines.status import Status

NAMED_AT_MOST = 5  # jobs named in an upstream wait; the rest are counted


def stamp(moment: datetime) -> str:
    """A moment as users read it: UTC, to the second (2026-12-02T02:40:00Z)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class RunnerWait:
    """The runners of one queue, as a waiting job or batch sees them."""

    queue: str
    online: int  # runners serving the queue whose heartbeat is recent
    busy: int  # of those, the ones executing a job
    last_seen: datetime | None  # the newest heartbeat of any runner serving it; None: never
    # What keeps the idle ones from taking a job, in their heartbeats' words
    # ("r1: Docker Engine at ... unreachable since ..., retrying").
    problems: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        wanted = f"waiting for a runner serving queue {self.queue}"
        if self.online:
            busy = ", all busy" if self.busy >= self.online else ""
            return "; ".join((f"{wanted}; {self.online} online{busy}", *self.problems))
        if self.last_seen is None:
            return f"{wanted}; no runner has ever served queue {self.queue}"
        return f"{wanted}; none online since {stamp(self.last_seen)}"


def runner_wait(queue: str, runners: Iterable[Runner], now: datetime) -> RunnerWait:
    serving = [runner for runner in runners if queue in runner.queues]
    online = [runner for runner in serving if is_online(runner, now)]
    return RunnerWait(
        queue=queue,
        online=len(online),
        busy=sum(1 for runner in online if runner.current_job_id is not None),
        last_seen=max((runner.last_seen for runner in serving), default=None),
        problems=tuple(
            f"{runner.name}: {runner.problem}"
            for runner in sorted(online, key=lambda runner: runner.name)
            if runner.problem and runner.current_job_id is None
        ),
    )


def is_stuck(
    wait: RunnerWait,
    waiting_since: datetime,
    now: datetime,
    stuck_after: timedelta,
    heard_since: datetime | None = None,
) -> bool:
    """Whether no runner of the queue has been online for ``stuck_after``."""
    if wait.online:
        return False
    moments = [waiting_since]
    if wait.last_seen is not None:
        moments.append(wait.last_seen)
    if heard_since is not None:
        moments.append(heard_since)
    return now - max(moments) >= stuck_after


def stuck_reason(reason: str, stuck_after: timedelta) -> str:
    """What a job or release failed as stuck says: the wait it gave up on."""
    return f"stuck for {stuck_after.total_seconds():g}s: {reason}"


def queue_unreachable(down_since: datetime) -> str:
    return f"not queued yet: Redis unreachable since {stamp(down_since)}"


def upstream_wait(job: Job, jobs: Sequence[Job]) -> str | None:
    """Why a created job has not started: the jobs it waits for, among ``jobs`` (its
    pipeline's), in pipeline order ("waiting for compile, unit"); None when no job
    holds it (it starts at the engine's next pass, or waits for its environment)."""
    if job.status is not Status.CREATED:
        return None
    waited_for = holding(job, upstream_of(job, current_attempts(jobs)))
    if not waited_for:
        return None
    ordered = sorted(waited_for, key=lambda other: (other.stage_index, other.id))
    names = [
        f"{other.name} (manual, not played yet)" if other.status is Status.MANUAL else other.name
        for other in ordered
    ]
    shown = ", ".join(names[:NAMED_AT_MOST])
    more = len(names) - NAMED_AT_MOST
    return f"waiting for {shown}" + (f" and {more} more" if more > 0 else "")


def job_wait(wait: RunnerWait, queue_down_since: datetime | None = None) -> str:
    """Why a pending job has not started."""
    if queue_down_since is not None:
        return f"{wait.reason}; {queue_unreachable(queue_down_since)}"
    return wait.reason


def release_wait(
    release: Release, wait: RunnerWait | None, queue_down_since: datetime | None = None
) -> str | None:
    """Why a release that has not ended is where it is; ``wait`` is of the runners
    of its environment's queue. None for a release that ended."""
    if not release.status.is_active:
        return None
    if release.status is ReleaseStatus.PAUSED:
        return f"paused before batch {release.next_batch + 1}: waits for a person to resume it"
    batch = f"batch {min(release.next_batch + 1, len(release.batches))} of {len(release.batches)}"
    if release.batch_in_flight and release.batch_runner is not None:
        return f"{batch} running on {release.batch_runner}"
    if release.batch_in_flight and wait is not None:
        return f"{batch} {job_wait(wait, queue_down_since)}"
    if queue_down_since is not None:
        return f"{batch} {queue_unreachable(queue_down_since)}"
    return f"{batch} about to be handed out"
