"""The Docker Engine away under a runner, on an engine of the test's own (see
tests/support/docker_engine.py; never the machine's, which other tests share):
restarted cleanly under a running job, killed (kill -9) under a running job and kept
down a while, stopped under an idle runner with a job pushed meanwhile, and down when
the runner starts. Each time the job ends honestly (failed with the engine named, or
retried per its rules), the runner's heartbeat and the pending job's ``waiting`` name
the engine while it is away, no job is taken meanwhile, and the same runner process,
never restarted by hand, runs the next job once the engine answers. A runner waiting
for its engine still stops at once when asked to.

The outage is timed on purpose (that is the scenario); everything else waits on a
condition, with bounds only a hang exceeds.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from runners.base_images import ensure_busybox
from runners.job_containers import JOB_PREFIX, ContainerOwner
from tests.e2e.pipeline_helpers import wait_for_job
from tests.e2e.test_dependency_outages import held_job, problem_of, runs_the_next_pipeline
from tests.e2e.test_push_to_pipeline import SECRET, finished, job_log, pushed_pipeline
from tests.support.docker_engine import DockerEngine
from tests.support.git import Repository
from tests.support.services import Deployment, ShipwayProcess, wait_until
from tests.support.test_run import RUN_ID, job_containers

pytestmark = pytest.mark.docker

HEAD = "image: shipway/busybox:1\njobs:\n"
# The first attempt holds until the engine goes away; a retry runs straight through.
HOLDS_ONCE = "if [ $SHIPWAY_JOB_ATTEMPT = 1 ]; then until [ -e /tmp/go ]; do sleep 0.1; done; fi"
RETRIED = (
    HEAD + "  held:\n"
    "    retry: {max: 1, when: [system_failure]}\n"
    f"    script: [echo started, '{HOLDS_ONCE}', echo done]\n"
)
QUICK = HEAD + "  quick: {script: echo quick}\n"
DOWN_SECONDS = 60  # how long the killed engine stays down: the minute issue 11 asks


@pytest.fixture
def own_engine() -> Iterator[DockerEngine]:
    """A Docker Engine to stop, kill and start, with the busybox image jobs run in."""
    engine = DockerEngine()
    try:
        engine.start()
        client = engine.client()
        try:
            ensure_busybox(client)
        finally:
            client.close()
        yield engine
    finally:
        engine.remove()


@pytest.fixture
def project(deployment: Deployment, server: ShipwayProcess, repository: Repository) -> None:
    deployment.add_project("app", repository.bare, "t/app", SECRET)


@pytest.fixture
def engine_runner(
    deployment: Deployment, runner_name: str, own_engine: DockerEngine
) -> Iterator[ShipwayProcess]:
    """A runner of the test's own engine; its containers there are checked by the
    tests and go with the engine."""
    process = deployment.start_runner(runner_name, env={"DOCKER_HOST": own_engine.url})
    yield process
    process.stop()


def attempts(deployment: Deployment, pipeline_id: int, name: str) -> list[dict[str, Any]]:
    """Every attempt of one job of the pipeline, the first first."""
    with deployment.api() as api:
        jobs = api.get(f"/api/pipelines/{pipeline_id}/jobs").json()
    return sorted((job for job in jobs if job["name"] == name), key=lambda job: job["attempt"])


def left_behind(own_engine: DockerEngine, runner_name: str) -> list[str]:
    """The runner's job containers still on the engine (its spare for the next job,
    made as the last one ended, is none of them)."""
    engine = own_engine.client()
    try:
        labels: dict[str, str | list[str] | bool] = {
            "label": ContainerOwner(runner_name, RUN_ID).label_filters(),
            "name": f"^/{JOB_PREFIX}",
        }
        return [
            container.name or "" for container in engine.containers.list(all=True, filters=labels)
        ]
    finally:
        engine.close()


def container_running(own_engine: DockerEngine, job_id: int) -> None:
    """Wait until the job's container runs on the test's engine."""
    engine = own_engine.client()
    try:
        filters = job_containers(job_id)
        wait_until(lambda: bool(engine.containers.list(filters=filters)), 60, "its container")
    finally:
        engine.close()


def succeeds_on(deployment: Deployment, pipeline_id: int, runner_name: str) -> dict[str, Any]:
    """Wait for the pipeline to succeed on the runner, whose problem then clears."""
    pipeline = finished(deployment, pipeline_id, timeout=180)
    assert pipeline["status"] == "success", pipeline
    assert pipeline["jobs"][0]["runner"] == runner_name
    wait_until(lambda: not problem_of(deployment, runner_name), 30, "the runner's problem cleared")
    return pipeline


def says_the_engine_is_away(
    deployment: Deployment, runner: ShipwayProcess, runner_name: str, own_engine: DockerEngine
) -> None:
    said = f"Docker Engine at {own_engine.url} unreachable since"
    wait_until(lambda: said in runner.log(), 60, "the runner logging that its engine is away")
    wait_until(lambda: said in problem_of(deployment, runner_name), 30, "its heartbeat saying so")


def test_a_runner_outlives_a_restart_of_its_docker_engine(
    deployment: Deployment,
    project: None,
    runner_name: str,
    repository: Repository,
    own_engine: DockerEngine,
    engine_runner: ShipwayProcess,
) -> None:
    pipeline_id, job = held_job(deployment, repository)
    container_running(own_engine, job["id"])
    own_engine.stop()  # stops the job's container too, as a restart of the engine does
    pipeline = finished(deployment, pipeline_id, timeout=180)
    (ended,) = pipeline["jobs"]
    assert ended["status"] == "failed", ended
    assert "Docker Engine" in ended["failure_reason"], ended
    says_the_engine_is_away(deployment, engine_runner, runner_name, own_engine)
    own_engine.start()
    runs_the_next_pipeline(deployment, repository, engine_runner, runner_name)
    assert left_behind(own_engine, runner_name) == []


def test_a_job_ends_honestly_when_its_docker_engine_is_killed(
    deployment: Deployment,
    project: None,
    runner_name: str,
    repository: Repository,
    own_engine: DockerEngine,
    engine_runner: ShipwayProcess,
) -> None:
    repository.commit({".shipway.yml": RETRIED})
    pipeline_id = pushed_pipeline(repository.push())
    first = wait_for_job(deployment, pipeline_id, "held", "running", timeout=120)
    container_running(own_engine, first["id"])
    own_engine.kill()  # kill -9 dockerd: its containerd ends, the job's container lives on

    def first_failed() -> bool:
        return bool(attempts(deployment, pipeline_id, "held")[0]["status"] == "failed")

    wait_until(first_failed, 120, "the first attempt failing")
    first = attempts(deployment, pipeline_id, "held")[0]
    assert "Docker Engine" in first["failure_reason"], first
    assert first["failure_kind"] == "system_failure", first
    says_the_engine_is_away(deployment, engine_runner, runner_name, own_engine)
    time.sleep(DOWN_SECONDS)  # the outage itself
    # No job was taken meanwhile: the retry waits, pending, and says for what.
    first, retry = attempts(deployment, pipeline_id, "held")
    assert first["status"] == "failed", first
    assert retry["status"] == "pending", retry
    assert f"{runner_name}: Docker Engine at {own_engine.url} unreachable" in retry["waiting"]
    assert engine_runner.process.poll() is None, engine_runner.log()
    own_engine.start()  # it ends the container the killed engine left running
    pipeline = finished(deployment, pipeline_id, timeout=180)
    assert pipeline["status"] == "success", pipeline
    first, retry = attempts(deployment, pipeline_id, "held")
    assert retry["runner"] == runner_name, retry
    assert "done" in job_log(deployment, retry["id"])
    wait_until(lambda: not problem_of(deployment, runner_name), 30, "the runner's problem cleared")
    runs_the_next_pipeline(deployment, repository, engine_runner, runner_name)
    assert left_behind(own_engine, runner_name) == []  # the killed job's, removed too


def test_a_job_pushed_while_the_docker_engine_is_away_waits_for_it(
    deployment: Deployment,
    project: None,
    runner_name: str,
    repository: Repository,
    own_engine: DockerEngine,
    engine_runner: ShipwayProcess,
) -> None:
    """The engine goes away between jobs, while the worker waits for a task: the
    task it then takes claims nothing, and no other is taken until the engine is back."""
    queue = redis.Redis.from_url(deployment.redis_url)

    def idle() -> bool:
        # RQ's record of the worker says idle once it asked the engine and waits for a task.
        return bool(queue.hget(f"rq:worker:{runner_name}", "state") == b"idle")

    try:
        wait_until(idle, 60, "the runner waiting for a task")
    finally:
        queue.close()
    own_engine.stop()
    repository.commit({".shipway.yml": QUICK})
    pipeline_id = pushed_pipeline(repository.push())
    says_the_engine_is_away(deployment, engine_runner, runner_name, own_engine)
    waiting = wait_for_job(deployment, pipeline_id, "quick", "pending")  # planned: async
    assert len(attempts(deployment, pipeline_id, "quick")) == 1
    wait_until(lambda: "left pending" in engine_runner.log(), 60, "the task leaving its job")
    assert f"{runner_name}: Docker Engine at" in waiting["waiting"], waiting
    own_engine.start()
    succeeds_on(deployment, pipeline_id, runner_name)
    assert engine_runner.process.poll() is None, engine_runner.log()


def test_a_runner_started_while_its_docker_engine_is_down_waits_for_it(
    deployment: Deployment,
    project: None,
    runner_name: str,
    repository: Repository,
    own_engine: DockerEngine,
) -> None:
    own_engine.stop()
    runner = deployment.start_runner(runner_name, env={"DOCKER_HOST": own_engine.url})
    try:
        says_the_engine_is_away(deployment, runner, runner_name, own_engine)
        repository.commit({".shipway.yml": QUICK})
        pipeline_id = pushed_pipeline(repository.push())
        assert "no job is taken until" in runner.log()
        waiting = wait_for_job(deployment, pipeline_id, "quick", "pending")  # planned: async
        assert len(attempts(deployment, pipeline_id, "quick")) == 1
        assert f"{runner_name}: Docker Engine at" in waiting["waiting"], waiting
        assert runner.process.poll() is None, runner.log()
        own_engine.start()
        succeeds_on(deployment, pipeline_id, runner_name)
        assert "answers again" in runner.log()
    finally:
        runner.stop()


def test_a_runner_waiting_for_its_docker_engine_stops_at_once_on_request(
    deployment: Deployment,
    server: ShipwayProcess,
    runner_name: str,
    own_engine: DockerEngine,
) -> None:
    own_engine.stop()
    runner = deployment.start_runner(runner_name, env={"DOCKER_HOST": own_engine.url})
    try:
        wait_until(lambda: "no job is taken until" in runner.log(), 60, "the wait for the engine")
        runner.process.send_signal(signal.SIGTERM)
        assert runner.process.wait(30) == 0, runner.log()
        assert "stopping on signal 15 while waiting for Docker Engine at" in runner.log()
    finally:
        runner.stop()
