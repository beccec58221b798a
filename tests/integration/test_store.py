"""The store on real SQLite and real PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pipelines.errors import Conflict, IllegalTransition, NotFound
from pipelines.model import BuiltImage, GitRef, Project, RefKind
from pipelines.plan import plan_jobs
from pipelines.spec import parse_spec
from pipelines.status import Status
from server.store import Store
from server.store.deliveries import NewDelivery
from server.store.pipelines import NewPipeline
from server.store.projects import SNAPSHOT_SECONDS
from server.store.tables import metadata
from server.usecases.deploy_config import compose_for, set_config
from tests.support.services import wait_until

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


def new_delivery(project: Project, key: str | None) -> NewDelivery:
    return NewDelivery(
        project.id, key, "Push Hook", {}, {"n": 1}, new_pipeline(project), "pipeline created"
    )


def test_a_redelivery_returns_the_first_pipeline(store: Store) -> None:
    project = make_project(store)
    first = store.deliveries.record(new_delivery(project, "key-1"))
    again = store.deliveries.record(new_delivery(project, "key-1"))
    assert not first.duplicate
    assert again.duplicate
    assert again.pipeline_id == first.pipeline_id
    assert store.pipelines.count() == 1


def test_concurrent_redeliveries_make_one_pipeline(store: Store) -> None:
    project = make_project(store)

    def deliver(_: int) -> int | None:
        return store.deliveries.record(new_delivery(project, "same-key")).pipeline_id

    with ThreadPoolExecutor(8) as pool:
        pipeline_ids = set(pool.map(deliver, range(16)))
    assert len(pipeline_ids) == 1
    assert store.pipelines.count() == 1
    assert store.deliveries.count(project.id) == 1


def test_deliveries_stored_together_find_their_redeliveries(store: Store) -> None:
    project = make_project(store)
    earlier = store.deliveries.record(new_delivery(project, "earlier"))
    stored = store.deliveries.record_together(
        [
            new_delivery(project, "a"),
            new_delivery(project, "earlier"),  # stored by another transaction
            new_delivery(project, "a"),  # stored earlier in this one
            new_delivery(project, None),  # no key: never a duplicate
        ]
    )
    assert [delivery.duplicate for delivery in stored] == [False, True, True, False]
    assert stored[1].pipeline_id == earlier.pipeline_id
    assert stored[2].pipeline_id == stored[0].pipeline_id
    assert store.pipelines.count() == 3
    assert store.deliveries.count(project.id) == 3


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


DEPLOYS = """
image: img
jobs:
  deploy: {environment: staging, script: [x]}
"""


def deploy_job(store: Store, project: Project) -> int:
    pipeline = store.pipelines.create(new_pipeline(project))
    store.pipelines.add_jobs(pipeline.id, plan_jobs(parse_spec(DEPLOYS)))
    return store.jobs.of_pipeline(pipeline.id)[0].id


def test_one_job_holds_an_environment_until_it_ends(store: Store) -> None:
    project = make_project(store)
    first, second = deploy_job(store, project), deploy_job(store, project)
    other_project = deploy_job(store, make_project(store, "other"))
    store.jobs.change_status(first, Status.PENDING)
    with pytest.raises(Conflict, match=f"environment staging is held by job {first}"):
        store.jobs.change_status(second, Status.PENDING)
    assert store.jobs.get(second).status is Status.CREATED  # nothing changed
    store.jobs.change_status(other_project, Status.PENDING)  # environments are per project
    assert store.environments.held(project.id) == {"staging": first}
    store.jobs.change_status(first, Status.RUNNING, runner="r")
    store.jobs.change_status(first, Status.SUCCESS, exit_code=0)
    assert store.environments.held(project.id) == {}
    store.jobs.change_status(second, Status.PENDING)
    assert store.environments.held(project.id) == {"staging": second}


def test_a_retry_is_a_new_attempt_and_the_old_one_stays(store: Store) -> None:
    project = make_project(store)
    job_id = deploy_job(store, project)
    with pytest.raises(Conflict, match="only a finished job is retried"):
        store.jobs.new_attempt(job_id)
    store.jobs.change_status(job_id, Status.PENDING)
    store.jobs.change_status(job_id, Status.RUNNING, runner="r")
    store.logs.append(job_id, 0, "first attempt\n")
    store.jobs.change_status(job_id, Status.FAILED, exit_code=1, failure_kind="script_failure")
    attempt = store.jobs.new_attempt(job_id)
    assert (attempt.attempt, attempt.status, attempt.environment) == (2, Status.CREATED, "staging")
    with pytest.raises(Conflict, match="retried already"):
        store.jobs.new_attempt(job_id)
    assert store.jobs.get(job_id).retried
    assert store.logs.read(job_id) == ("first attempt\n", 14)
    assert store.logs.read(attempt.id) == ("", 0)
    assert store.pipelines.settle(attempt.pipeline_id) is Status.RUNNING


def test_an_environment_value_of_a_secret_wins_over_the_general_one(store: Store) -> None:
    project = make_project(store)
    assert store.secrets.put(project.id, "*", "TOKEN", "sealed-any", "admin")
    assert store.secrets.put(project.id, "staging", "TOKEN", "sealed-staging", "admin")
    assert not store.secrets.put(project.id, "*", "TOKEN", "sealed-any-2", "admin")
    names = ("TOKEN", "ABSENT")
    assert store.secrets.sealed_for(project.id, "staging", names) == {"TOKEN": "sealed-staging"}
    assert store.secrets.sealed_for(project.id, "production", names) == {"TOKEN": "sealed-any-2"}
    assert store.secrets.sealed_for(project.id, None, names) == {"TOKEN": "sealed-any-2"}
    store.secrets.delete(project.id, "*", "TOKEN")
    assert store.secrets.sealed_for(project.id, None, names) == {}
    with pytest.raises(NotFound):
        store.secrets.delete(project.id, "*", "TOKEN")


def test_an_images_runtime_mounts_reach_the_compose_file_of_their_environments(
    store: Store,
) -> None:
    project = make_project(store)
    pipeline = store.pipelines.create(new_pipeline(project))
    store.pipelines.add_jobs(pipeline.id, plan_jobs(parse_spec(SPEC)))
    job = store.jobs.of_pipeline(pipeline.id)[0]
    jdk = {"host": "/opt/jdk-21", "target": "/opt/jdk", "environments": ["production"]}
    fonts = {"host": "/usr/share/fonts", "target": "/usr/share/fonts", "environments": None}
    image = store.images.record(
        BuiltImage(
            pipeline_id=pipeline.id,
            job_id=job.id,
            repository="127.0.0.1:5000/app",
            tag="abc",
            digest="sha256:" + "a" * 64,
            middleware=None,
            pushed_bytes=1,
            app_layer_bytes=1,
            runtime_mounts=(jdk, fonts),
        )
    )
    for environment in ("staging", "production"):
        set_config(store, "app", environment, {"instances": 1}, "ops")

    def volumes(environment: str, reference: str) -> list[str]:
        _, rendered = compose_for(store, "app", environment, reference)
        return list(
            yaml.safe_load(rendered.compose)["services"][f"app-{environment}-1"].get("volumes", [])
        )

    assert volumes("staging", image.reference) == ["/usr/share/fonts:/usr/share/fonts:ro"]
    assert volumes("production", image.reference) == [
        "/opt/jdk-21:/opt/jdk:ro",
        "/usr/share/fonts:/usr/share/fonts:ro",
    ]
    assert volumes("production", "busybox:1") == []  # not built by Shipway: nothing to mount


def test_a_project_made_here_is_seen_at_once_and_one_made_by_another_server_soon(
    store: Store, database_url: str
) -> None:
    """Webhooks read projects from a snapshot (server.store.projects): this process's
    changes show at once, another server's within SNAPSHOT_SECONDS."""
    assert store.projects.webhook_secrets() == []
    made = make_project(store)
    assert store.projects.by_gitlab_path("group/app") == made
    assert store.projects.webhook_secret(made.id) == "s" * 20
    other_server = Store.open(database_url, migrate=False)
    try:
        theirs = make_project(other_server, "theirs")
        wait_until(
            lambda: "group/theirs" in [p.gitlab_path for p in _known(store)],
            SNAPSHOT_SECONDS + 5,
            "the other server's project seen here",
        )
        assert store.projects.webhook_secret(theirs.id) == "s" * 20
    finally:
        other_server.close()
    with pytest.raises(NotFound, match="project 'group/none' does not exist"):
        store.projects.by_gitlab_path("group/none")


def _known(store: Store) -> list[Project]:
    found = []
    for path in ("group/app", "group/theirs"):
        try:
            found.append(store.projects.by_gitlab_path(path))
        except NotFound:
            continue
    return found
