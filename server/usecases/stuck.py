"""Stuck jobs and release batches, as GitLab's: what waits for a runner of its queue
while none has been online for the stuck time (``SHIPWAY_STUCK_AFTER``) fails, with
the wait it gave up on as its reason (``pipelines.waiting`` decides).

A job fails with the failure kind ``stuck`` (never retried on its own: a new attempt
would only wait as long again) and its task is taken out of the queue; a runner that
takes it all the same is refused, as the job is no longer pending. A release whose
batch no runner claimed fails and its batch's task is taken out of the queue the same
way (a late claim is refused); its deploy job then fails as the release did.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta

from pipelines.errors import Conflict, ExternalError
from pipelines.ports import JobQueue
from pipelines.status import FailureKind, Status
from pipelines.waiting import is_stuck, runner_wait, stuck_reason
from server.store import Store
from server.usecases.deploy_jobs import RELEASING

log = logging.getLogger(__name__)


def fail_stuck(
    store: Store,
    queue: JobQueue,
    now: datetime,
    stuck_after: timedelta,
    heard_since: datetime | None = None,
) -> list[str]:
    """Fail what is stuck; return a line for each ("job 3", "release 2")."""
    pending = [job for job in store.jobs.with_status(Status.PENDING) if job.kind not in RELEASING]
    waiting = [r for r in store.releases.running() if r.batch_in_flight and r.batch_runner is None]
    if not pending and not waiting:
        return []
    runners = store.runners.all()
    failed = []
    for job in pending:
        wait = runner_wait(job.queue, runners, now)
        if not is_stuck(wait, job.queued_at or job.created_at, now, stuck_after, heard_since):
            continue
        reason = stuck_reason(wait.reason, stuck_after)
        try:
            store.jobs.change_status(
                job.id,
                Status.FAILED,
                expect=Status.PENDING,
                failure_kind=FailureKind.STUCK.value,
                failure_reason=reason,
            )
        except Conflict:
            continue  # a runner claimed it meanwhile: it was not stuck after all
        store.logs.add(job.id, f"ERROR: {reason}\n")
        store.audit.record("engine", "job.stuck", "failed", f"job {job.id}", {"reason": reason})
        log.warning("job %s: %s", job.id, reason)
        failed.append(f"job {job.id}")
        # With Redis away the task stays: a runner taking it later is refused.
        with contextlib.suppress(ExternalError):
            queue.drop(job.id)
    for release in waiting:
        wait = runner_wait(release.environment, runners, now)
        since = release.batch_handed_out_at or release.created_at
        if not is_stuck(wait, since, now, stuck_after, heard_since):
            continue
        batch = f"batch {release.next_batch + 1} of {len(release.batches)}"
        reason = stuck_reason(f"{batch} {wait.reason}", stuck_after)
        if not store.releases.give_up_batch(release.id, release.handouts, reason):
            continue  # claimed, reported or closed meanwhile
        store.audit.record(
            "engine", "release.stuck", "failed", f"release {release.id}", {"reason": reason}
        )
        log.warning("release %s: %s", release.id, reason)
        failed.append(f"release {release.id}")
        # As for a job: with Redis away the task stays, and a runner that takes it
        # later is refused its claim (the release is no longer running).
        with contextlib.suppress(ExternalError):
            queue.drop_release_batch(release.batch_task_id)
    return failed
