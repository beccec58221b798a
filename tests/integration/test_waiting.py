"""Why jobs and releases wait, read from the store (SQLite and PostgreSQL), and the
stuck rule applied to it: jobs and release batches fail, others are left alone."""

from __future__ import annotations

from datetime import timedelta

import redis
from rq import Queue

from pipelines.model import GitRef, RefKind
from pipelines.plan import plan_jobs
from pipelines.ports import TaskState
from pipelines.release import ReleaseStatus
from pipelines.rollout import PauseMode
from pipelines.spec import parse_spec
from pipelines.status import Status
from server.queue import RqJobQueue
from server.store import Store
from server.store.pipelines import NewPipeline
from server.store.releases import NewRelease
from server.store.tables import utcnow
from server.usecases.stuck import fail_stuck
from server.usecases.waiting import job_waits, pipeline_wait, release_waits

SPEC = """
image: img
jobs:
  unit: {stage: test, queue: build, script: [x]}
  lint: {stage: test, queue: lint, script: [x]}
  image: {stage: build, kind: image, layers: {os: base, app: {copy: [src/], command: [x]}}}
  deploy: {stage: deploy, kind: deploy, environment: staging, image_job: image}
  ship: {stage: deploy, environment: staging, script: [x]}
"""
MINUTE = timedelta(minutes=1)


def queue_length(connection: redis.Redis, name: str) -> int:
    """Tasks RQ holds in the queue ``name``: what a runner serving it would take."""
    return Queue(name, connection=connection).count


def pipeline(store: Store) -> int:
    project = store.projects.create("app", "/r.git", "team/app", "s" * 20, ("*",), ("*",))
    new = NewPipeline(project.id, GitRef(RefKind.BRANCH, "main"), "c" * 40, "push", "dev")
    created = store.pipelines.create(new)
    store.pipelines.add_jobs(created.id, plan_jobs(parse_spec(SPEC)))
    return created.id


def release(store: Store, job_id: int | None = None) -> int:
    return store.releases.create(
        NewRelease(
            project_id=store.projects.by_name("app").id,
            environment="staging",
            image="reg/app:1",
            config_version=1,
            compose="",
            files={},
            batches=[["app-staging-1"], ["app-staging-2"]],
            beta=False,
            pause_mode=PauseMode.NEVER,
            created_by="ops",
            job_id=job_id,
        )
    ).id


def test_each_waiting_job_says_why(store: Store) -> None:
    pipeline_id = pipeline(store)
    jobs = {job.name: job for job in store.jobs.of_pipeline(pipeline_id)}
    for name in ("unit", "lint", "deploy"):
        store.jobs.change_status(jobs[name].id, Status.PENDING)  # deploy holds staging
    store.runners.heartbeat("r1", ("build",), "host", 1, 99)
    release_id = release(store)  # another release of staging has not ended
    now = utcnow()
    waits = job_waits(store, store.jobs.of_pipeline(pipeline_id), now, now - MINUTE)
    redis_away = f"not queued yet: Redis unreachable since {(now - MINUTE):%Y-%m-%dT%H:%M:%S}Z"
    assert waits == {
        jobs["unit"].id: f"waiting for a runner serving queue build; 1 online, all busy; "
        f"{redis_away}",
        jobs["lint"].id: "waiting for a runner serving queue lint; "
        f"no runner has ever served queue lint; {redis_away}",
        jobs["deploy"].id: f"waiting for release {release_id} of staging to end (running)",
        # Created: the jobs of the earlier stages first, then the environment.
        jobs["ship"].id: "waiting for image, unit, lint",
    }
    assert pipeline_wait(store.jobs.of_pipeline(pipeline_id), waits) == (
        f"job unit: {waits[jobs['unit'].id]} (and 3 more jobs waiting)"
    )
    for name in ("image", "unit", "lint"):
        if name == "image":
            store.jobs.change_status(jobs[name].id, Status.PENDING)
        store.jobs.change_status(jobs[name].id, Status.RUNNING, runner="r1")
        store.jobs.change_status(jobs[name].id, Status.SUCCESS)
    waits = job_waits(store, store.jobs.of_pipeline(pipeline_id), now)
    assert waits[jobs["ship"].id] == (
        f"waiting for environment staging, held by job {jobs['deploy'].id}"
    )


def test_a_running_deploy_job_says_where_its_release_is(store: Store) -> None:
    pipeline_id = pipeline(store)
    deploy = next(j for j in store.jobs.of_pipeline(pipeline_id) if j.name == "deploy")
    store.jobs.change_status(deploy.id, Status.PENDING)
    store.jobs.change_status(deploy.id, Status.RUNNING, runner="shipway")
    release_id = release(store, deploy.id)
    store.releases.update(release_id, batch_in_flight=True, batch_handed_out_at=utcnow())
    waits = job_waits(store, [store.jobs.get(deploy.id)], utcnow())
    assert waits[deploy.id] == (
        f"release {release_id}: batch 1 of 2 waiting for a runner serving queue staging; "
        "no runner has ever served queue staging"
    )
    claimed = store.releases.claim_batch(release_id, 0, 0, "r9")
    assert release_waits(store, claimed, utcnow()) == "batch 1 of 2 running on r9"


def test_what_no_runner_took_for_the_stuck_time_fails_and_nothing_else(
    store: Store, redis_url: str
) -> None:
    pipeline_id = pipeline(store)
    jobs = {job.name: job for job in store.jobs.of_pipeline(pipeline_id)}
    store.jobs.change_status(jobs["unit"].id, Status.PENDING)
    store.jobs.change_status(jobs["lint"].id, Status.PENDING)
    store.runners.heartbeat("r1", ("build",), "host", 1, 7)  # online, busy: not stuck
    release_id = release(store)
    handed_out = store.releases.update(
        release_id, batch_in_flight=True, handouts=1, batch_handed_out_at=utcnow()
    )
    connection = redis.Redis.from_url(redis_url)
    queue = RqJobQueue(connection)
    try:
        # Their tasks are in the real queue, as the engine left them.
        for name in ("unit", "lint"):
            queue.enqueue(jobs[name].queue, store.jobs.task(jobs[name].id))
        batch_task = handed_out.batch_task_id
        queue.enqueue_release_batch("staging", batch_task, {"release_id": release_id})
        queued = {name: queue_length(connection, name) for name in ("build", "lint", "staging")}
        assert queued == {"build": 1, "lint": 1, "staging": 1}
        stuck_after = timedelta(seconds=10)
        assert fail_stuck(store, queue, utcnow(), stuck_after) == []  # not yet
        # Later, while r1 is still online (its heartbeat is under 20 s old).
        later = utcnow() + timedelta(seconds=15)
        failed = fail_stuck(store, queue, later, stuck_after)
        # What failed left the queue, so a runner coming online later finds nothing
        # of it; the job still waiting keeps its task.
        assert queue.task_state(jobs["lint"].id)[0] is TaskState.MISSING
        assert queue.release_task_state(batch_task)[0] is TaskState.MISSING
        assert queue.task_state(jobs["unit"].id)[0] is TaskState.QUEUED
        queued = {name: queue_length(connection, name) for name in ("build", "lint", "staging")}
        assert queued == {"build": 1, "lint": 0, "staging": 0}
    finally:
        connection.close()
    assert failed == [f"job {jobs['lint'].id}", f"release {release_id}"]
    lint = store.jobs.get(jobs["lint"].id)
    assert (lint.status, lint.failure_kind) == (Status.FAILED, "stuck")
    assert lint.failure_reason == (
        "stuck for 10s: waiting for a runner serving queue lint; "
        "no runner has ever served queue lint"
    )
    assert "ERROR: stuck for 10s" in store.logs.read(lint.id)[0]
    assert store.jobs.get(jobs["unit"].id).status is Status.PENDING
    gone = store.releases.get(release_id)
    assert (gone.status, gone.batch_in_flight) == (ReleaseStatus.FAILED, False)
    assert gone.reason == (
        "stuck for 10s: batch 1 of 2 waiting for a runner serving queue staging; "
        "no runner has ever served queue staging"
    )
