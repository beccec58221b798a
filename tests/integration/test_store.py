"""The store on real SQLite and real PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pipelines.errors import Conflict, IllegalTransition, NotFound
from pipelines.model import GitRef, Project, RefKind
from pipelines.plan import plan_jobs
from pipelines.spec import parse_spec
from pipelines.status import Status
from server.store import Store
from server.store.pipelines import NewPipeline
from server.store.tables import metadata

SPEC = """
image: img
stages: [build, test]
jobs:
  a: {stage: build, script: [x]}
  b: {script: [y]}
"""


def make_project(store: Store, name: str = "app") -> Project:
    return store.projects.create(name, "/srv/app.git", f"group/{name}", "s" * 20, ("*",), ("*",))


def new_pipeline(project: Project) -> NewPipeline:
    return NewPipeline(project.id, GitRef(RefKind.BRANCH, "main"), "f" * 40, "push", "dev")


def test_migrations_build_exactly_the_declared_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_projects_are_unique_by_name_and_path(store: Store) -> None:
    make_project(store)
    with pytest.raises(Conflict):
        make_project(store)
    assert store.projects.by_gitlab_path("group/app").name == "app"
    with pytest.raises(NotFound, match="project 'nope' does not exist"):
        store.projects.by_name("nope")


def test_a_redelivery_returns_the_first_pipeline(store: Store) -> None:
    project = make_project(store)
    first = store.pipelines.record_delivery(
        project.id, "key-1", "Push Hook", {}, {"n": 1}, new_pipeline(project), "pipeline created"
    )
    again = store.pipelines.record_delivery(
        project.id, "key-1", "Push Hook", {}, {"n": 1}, new_pipeline(project), "pipeline created"
    )
    assert not first.duplicate
    assert again.duplicate
    assert again.pipeline_id == first.pipeline_id
    assert store.pipelines.count() == 1


def test_concurrent_redeliveries_make_one_pipeline(store: Store) -> None:
    project = make_project(store)

    def deliver(_: int) -> int | None:
        return store.pipelines.record_delivery(
            project.id, "same-key", "Push Hook", {}, {}, new_pipeline(project), "pipeline created"
        ).pipeline_id

    with ThreadPoolExecutor(8) as pool:
        pipeline_ids = set(pool.map(deliver, range(16)))
    assert len(pipeline_ids) == 1
    assert store.pipelines.count() == 1
    assert store.pipelines.deliveries(project.id) == 1


def test_jobs_change_status_only_through_the_table(store: Store) -> None:
    project = make_project(store)
    pipeline = store.pipelines.create(new_pipeline(project))
    store.pipelines.add_jobs(pipeline.id, plan_jobs(parse_spec(SPEC)))
    store.pipelines.add_jobs(pipeline.id, plan_jobs(parse_spec(SPEC)))  # a second plan is ignored
    first, second = store.jobs.of_pipeline(pipeline.id)
    assert [first.name, second.name] == ["a", "b"]
    with pytest.raises(IllegalTransition):
        store.jobs.change_status(first.id, Status.SUCCESS)
    store.jobs.change_status(first.id, Status.PENDING, expect=Status.CREATED)
    with pytest.raises(Conflict, match="is pending, not created"):
        store.jobs.change_status(first.id, Status.PENDING, expect=Status.CREATED)
    running = store.jobs.change_status(first.id, Status.RUNNING, runner="r1")
    assert running.runner == "r1"
    assert running.started_at is not None
    done = store.jobs.change_status(first.id, Status.FAILED, exit_code=3, failure_reason=None)
    assert (done.status, done.exit_code) == (Status.FAILED, 3)
    assert done.finished_at is not None


def test_settle_merges_job_statuses(store: Store) -> None:
    project = make_project(store)
    pipeline = store.pipelines.create(new_pipeline(project))
    store.pipelines.add_jobs(pipeline.id, plan_jobs(parse_spec(SPEC)))
    first, second = store.jobs.of_pipeline(pipeline.id)
    assert store.pipelines.settle(pipeline.id) is Status.CREATED
    store.jobs.change_status(first.id, Status.PENDING)
    store.jobs.change_status(first.id, Status.RUNNING, runner="r")
    assert store.pipelines.settle(pipeline.id) is Status.RUNNING
    assert store.pipelines.get(pipeline.id).started_at is not None
    store.jobs.change_status(first.id, Status.SUCCESS, exit_code=0)
    store.jobs.change_status(second.id, Status.SKIPPED)
    assert store.pipelines.settle(pipeline.id) is Status.SUCCESS
    assert store.pipelines.get(pipeline.id).finished_at is not None
    assert store.pipelines.open_ids() == []


def test_an_unplanned_pipeline_fails_with_its_reason(store: Store) -> None:
    project = make_project(store)
    pipeline = store.pipelines.create(new_pipeline(project))
    assert [p.id for p in store.pipelines.to_plan()] == [pipeline.id]
    store.pipelines.end_unplanned(
        pipeline.id, Status.FAILED, "line 3: jobs.a.script: required key is missing"
    )
    failed = store.pipelines.get(pipeline.id)
    assert failed.status is Status.FAILED
    assert failed.error == "line 3: jobs.a.script: required key is missing"
    assert store.pipelines.to_plan() == []


def test_log_appends_are_idempotent_and_refuse_gaps(store: Store) -> None:
    project = make_project(store)
    pipeline = store.pipelines.create(new_pipeline(project))
    store.pipelines.add_jobs(pipeline.id, plan_jobs(parse_spec(SPEC)))
    job = store.jobs.of_pipeline(pipeline.id)[0]
    assert store.logs.append(job.id, 0, "héllo ") == 6
    assert store.logs.append(job.id, 0, "héllo ") == 6  # a resend
    assert store.logs.append(job.id, 3, "lo wörld\n") == 12  # overlaps, adds the rest
    assert store.logs.append(job.id, 12, "nul\x00byte\n") == 21
    with pytest.raises(Conflict, match="leaves a gap"):
        store.logs.append(job.id, 30, "x")
    assert store.logs.read(job.id) == ("héllo wörld\nnul\N{REPLACEMENT CHARACTER}byte\n", 21)
    assert store.logs.read(job.id, 7) == ("örld\nnul\N{REPLACEMENT CHARACTER}byte\n", 21)
    assert store.logs.read(job.id, 21) == ("", 21)
