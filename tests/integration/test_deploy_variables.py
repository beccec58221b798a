"""Jobs after a deploy know where it went (P2): the task a runner gets for a job of a
later stage, or one that needs the deploy, carries the environment, the image and
its digest, and the environment's URL; jobs before it or beside it do not."""

from __future__ import annotations

from pipelines.model import GitRef, RefKind
from pipelines.plan import plan_jobs
from pipelines.rollout import PauseMode
from pipelines.spec import parse_spec
from pipelines.status import Status
from server.store import Store
from server.store.pipelines import NewPipeline
from server.usecases.deploy_jobs import DEPLOY
from server.usecases.dispatch import task_of
from server.usecases.releases import create_release

SPEC = """image: i
stages: [build, deploy, verify]
jobs:
  build: {stage: build, kind: image, layers: {os: i, app: {copy: [site/], command: [x]}}}
  beside: {stage: deploy, script: ['true']}
  staging: {stage: deploy, kind: deploy, environment: staging}
  smoke: {stage: verify, script: ['curl "$SHIPWAY_ENVIRONMENT_URL"']}
  early: {stage: verify, needs: [build], script: ['true']}
"""
IMAGE = "127.0.0.1:5000/app@sha256:" + "a" * 64


def test_jobs_after_a_deploy_get_where_it_went(store: Store) -> None:
    project = store.projects.create("app", "/r.git", "g/app", "s" * 20, ("*",), ("*",))
    store.deployments.save_config(
        project.id, "staging", {"instances": 1, "url": "http://staging.example.test/"}, "t"
    )
    pipeline = store.pipelines.create(
        NewPipeline(project.id, GitRef(RefKind.BRANCH, "main"), "a" * 40, "api", "t")
    )
    store.pipelines.add_jobs(pipeline.id, plan_jobs(parse_spec(SPEC)))
    jobs = {job.name: job for job in store.jobs.of_pipeline(pipeline.id)}
    assert jobs["staging"].kind == DEPLOY
    release = create_release(
        store,
        "app",
        "staging",
        IMAGE,
        batches=1,
        grouping=None,
        pause_mode=PauseMode.NEVER,
        beta=False,
        actor="t",
        job_id=jobs["staging"].id,
    )
    assert task_of(store, jobs["smoke"]).variables == {}  # the deploy has not succeeded
    for status in (Status.PENDING, Status.RUNNING, Status.SUCCESS):
        store.jobs.change_status(jobs["staging"].id, status)
    variables = task_of(store, jobs["smoke"]).variables
    assert variables == {
        "SHIPWAY_ENVIRONMENT": "staging",
        "SHIPWAY_IMAGE": IMAGE,
        "SHIPWAY_IMAGE_DIGEST": "sha256:" + "a" * 64,
        "SHIPWAY_ENVIRONMENT_URL": "http://staging.example.test/",
    }
    assert release.environment == "staging"
    environment = task_of(store, jobs["smoke"]).environment()
    assert environment["SHIPWAY_ENVIRONMENT_URL"] == "http://staging.example.test/"
    for name in ("build", "beside", "early"):  # before it, beside it, not needing it
        assert task_of(store, jobs[name]).variables == {}, name
