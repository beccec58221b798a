"""Commit statuses and merge-request notes sent to GitLab (T5) through the real
python-gitlab client, to a fake of GitLab's two documented calls: each status once,
in order; GitLab away, then back; an unknown project given up at once; a note on
the merge request once its pipeline deployed to staging, with the testers' address."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from pipelines.model import GitRef, RefKind
from pipelines.plan import plan_jobs
from pipelines.rollout import PauseMode
from pipelines.spec import parse_spec
from pipelines.status import Status
from server.gitlab import PythonGitLab
from server.store import Store
from server.store.pipelines import NewPipeline
from server.store.releases import NewRelease
from server.store.tables import utcnow
from server.usecases.deploy_config import set_config
from server.usecases.gitlab_feedback import report_to_gitlab
from tests.support.fake_gitlab import FakeGitLab, running

SHA = "c" * 40
UNIT = """
image: img
jobs:
  unit: {stage: test, script: [x]}
"""
DEPLOY = """
image: img
jobs:
  unit: {stage: test, script: [x]}
  image: {stage: build, kind: image, layers: {os: base, app: {copy: [src/], command: [x]}}}
  staging: {stage: deploy, kind: deploy, environment: staging, image_job: image}
"""


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    with running(FakeGitLab("gl-token", {"team/app"})) as fake:
        yield fake


def pipeline_of(
    store: Store, path: str = "team/app", iid: int | None = None, spec: str = UNIT
) -> int:
    project = store.projects.by_name("app") if path == "team/app" else None
    if project is None:
        project = store.projects.create(
            path.rsplit("/", 1)[1], "/r.git", path, "s" * 20, ("*",), ("*",)
        )
    source = "merge_request" if iid else "push"
    new = NewPipeline(project.id, GitRef(RefKind.BRANCH, "main"), SHA, source, "dev", iid)
    pipeline = store.pipelines.create(new)
    store.pipelines.add_jobs(pipeline.id, plan_jobs(parse_spec(spec)))
    return pipeline.id


def advance(store: Store, pipeline_id: int, status: Status, job: str = "unit") -> None:
    found = next(j for j in store.jobs.of_pipeline(pipeline_id) if j.name == job)
    store.jobs.change_status(found.id, status)
    store.pipelines.settle(pipeline_id)


def test_each_status_once_in_order_and_gitlab_away_then_back(
    store: Store, gitlab: FakeGitLab
) -> None:
    store.projects.create("app", "/r.git", "team/app", "s" * 20, ("*",), ("*",))
    client = PythonGitLab(gitlab.url, "gl-token")
    pipeline_id = pipeline_of(store)
    now = utcnow()
    assert report_to_gitlab(store, client, now, "https://ci.example.com") == 1
    assert report_to_gitlab(store, client, now) == 0  # nothing new: nothing sent
    (pending,) = gitlab.statuses
    assert (pending["status"], pending["name"], pending["ref"]) == ("pending", "shipway", "main")
    assert pending["target_url"] == f"https://ci.example.com/api/pipelines/{pipeline_id}"

    advance(store, pipeline_id, Status.PENDING)  # still "pending" for GitLab: not resent
    assert report_to_gitlab(store, client, now) == 0
    advance(store, pipeline_id, Status.RUNNING)
    gitlab.fail_next = 1  # GitLab answers 500 once
    assert report_to_gitlab(store, client, now) == 0
    failed = store.gitlab_reports.of_pipeline(pipeline_id)["status"]
    assert (failed.sent, failed.attempts) == ("pending", 1)
    assert "500" in (failed.error or "")
    assert report_to_gitlab(store, client, now) == 0  # backing off
    assert report_to_gitlab(store, client, now + timedelta(seconds=3)) == 1
    advance(store, pipeline_id, Status.FAILED)
    assert report_to_gitlab(store, client, now + timedelta(seconds=3)) == 1
    assert gitlab.states("team/app", SHA) == ["pending", "running", "failed"]
    assert gitlab.statuses[-1]["description"] == f"pipeline {pipeline_id} failed"


def test_an_unknown_project_is_given_up_at_once(store: Store, gitlab: FakeGitLab) -> None:
    client = PythonGitLab(gitlab.url, "gl-token")
    pipeline_id = pipeline_of(store, "other/ghost")
    assert report_to_gitlab(store, client, utcnow()) == 0
    given_up = store.gitlab_reports.of_pipeline(pipeline_id)["status"]
    assert "has no other/ghost" in (given_up.error or "")
    assert report_to_gitlab(store, client, utcnow() + timedelta(hours=1)) == 0
    assert gitlab.statuses == []
    wrong_token = PythonGitLab(gitlab.url, "nope")
    store.projects.create("app", "/r.git", "team/app", "s" * 20, ("*",), ("*",))
    refused = pipeline_of(store)
    assert report_to_gitlab(store, wrong_token, utcnow()) == 0
    assert "401" in (store.gitlab_reports.of_pipeline(refused)["status"].error or "")


def test_a_merge_request_is_told_where_its_deploy_runs(store: Store, gitlab: FakeGitLab) -> None:
    store.projects.create("app", "/r.git", "team/app", "s" * 20, ("*",), ("*",))
    client = PythonGitLab(gitlab.url, "gl-token")
    set_config(store, "app", "staging", {"url": "https://app.staging.example.com/"}, "ops")
    pipeline_id = pipeline_of(store, iid=7, spec=DEPLOY)
    deploy = next(j for j in store.jobs.of_pipeline(pipeline_id) if j.name == "staging")
    release = store.releases.create(
        NewRelease(
            project_id=store.projects.by_name("app").id,
            environment="staging",
            image="reg/app@sha256:" + "d" * 64,
            config_version=1,
            compose="",
            files={},
            batches=[["app-staging-1"]],
            beta=False,
            pause_mode=PauseMode.NEVER,
            created_by="pipeline",
            job_id=deploy.id,
        )
    )
    report_to_gitlab(store, client, utcnow())
    assert gitlab.notes == []  # not deployed yet
    for status in (Status.PENDING, Status.RUNNING, Status.SUCCESS):
        store.jobs.change_status(deploy.id, status)
    report_to_gitlab(store, client, utcnow())
    report_to_gitlab(store, client, utcnow())  # once only
    (note,) = gitlab.notes
    assert note["noteable_iid"] == 7
    assert note["body"] == (
        f"Shipway deployed cccccccc to **staging**: https://app.staging.example.com/ "
        f"(release {release.id}). Testers, it is ready."
    )
