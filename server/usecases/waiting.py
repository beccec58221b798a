"""Why jobs, pipelines and releases wait: the text the API and the CLI show beside a
status that has not ended (``pipelines.waiting`` says it; this reads what it needs).

- a pending job: the runners of its queue (none online since..., all busy), and Redis
  when it is unreachable; a pending deploy job: the release of its environment that
  has not ended; a running deploy job: where its release is;
- a created job: the jobs it waits for (its needs, or the earlier stages' jobs not
  finished); once none, for an environment another job holds: that job;
- a pipeline: the first of its jobs that waits;
- a running release: its batch (running on a runner, or waiting for one), a paused
  release: a person.
"""

from __future__ import annotations

from datetime import datetime

from pipelines.model import Job, Runner
from pipelines.release import Release
from pipelines.status import Status
from pipelines.waiting import job_wait, release_wait, runner_wait, upstream_wait
from server.store import Store
from server.usecases.approvals import approval_state
from server.usecases.deploy_jobs import RELEASING


def job_waits(
    store: Store, jobs: list[Job], now: datetime, queue_down_since: datetime | None = None
) -> dict[int, str]:
    """Job id -> why it waits, for the jobs of ``jobs`` that wait on something.

    A created job's wait names the jobs it waits for among ``jobs``: pass every job
    of its pipeline."""
    pending = [job for job in jobs if job.status is Status.PENDING]
    created = [job for job in jobs if job.status is Status.CREATED]
    deploying = [job for job in jobs if job.status is Status.RUNNING and job.kind in RELEASING]
    if not pending and not created and not deploying:
        return {}
    waits: dict[int, str] = {}
    blocked = []
    for job in created:
        upstream = upstream_wait(
            job, [other for other in jobs if other.pipeline_id == job.pipeline_id]
        )
        if upstream is not None:
            waits[job.id] = upstream
        elif job.environment:
            blocked.append(job)
    runners: list[Runner] = store.runners.all() if pending else []
    for job in pending:
        if job.kind in RELEASING:
            waits[job.id] = _deploy_wait(store, job)
        else:
            waits[job.id] = job_wait(runner_wait(job.queue, runners, now), queue_down_since)
    for job in deploying:
        release = store.releases.of_job(job.id)
        if release is not None:
            where = release_waits(store, release, now, queue_down_since)
            if where is not None:
                waits[job.id] = f"release {release.id}: {where}"
    for job in blocked:
        holder = _holder(store, job)
        if holder is not None:
            waits[job.id] = f"waiting for environment {job.environment}, held by job {holder}"
    return waits


def pipeline_wait(jobs: list[Job], waits: dict[int, str]) -> str | None:
    """The first waiting job's reason, named, and how many more wait. A job that
    waits on something else (a runner, a release) comes before those that wait for
    other jobs: that is what holds the pipeline."""
    waiting = [job for job in jobs if job.id in waits and not job.retried]
    if not waiting:
        return None
    waiting.sort(key=lambda job: job.status is Status.CREATED)  # stable: pipeline order
    first = waiting[0]
    more = f" (and {len(waiting) - 1} more jobs waiting)" if len(waiting) > 1 else ""
    return f"job {first.name}: {waits[first.id]}{more}"


def release_waits(
    store: Store, release: Release, now: datetime, queue_down_since: datetime | None = None
) -> str | None:
    approval = approval_state(store, release)
    if approval is not None:
        return approval.waiting()
    wait = None
    if release.batch_in_flight and release.batch_runner is None:
        wait = runner_wait(release.environment, store.runners.all(), now)
    return release_wait(release, wait, queue_down_since)


def _deploy_wait(store: Store, job: Job) -> str:
    project_id = store.pipelines.get(job.pipeline_id).project_id
    for release in store.releases.of_environment(project_id, str(job.environment)):
        if release.status.is_active:
            return (
                f"waiting for release {release.id} of {job.environment} to end ({release.status})"
            )
    return f"ordering the release to {job.environment}"


def _holder(store: Store, job: Job) -> int | None:
    project_id = store.pipelines.get(job.pipeline_id).project_id
    holder = store.environments.held(project_id).get(str(job.environment))
    return holder if holder is not None and holder != job.id else None
