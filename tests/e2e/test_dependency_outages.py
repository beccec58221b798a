"""Dependencies that go away under a live runner, then come back: Redis (kill -9 and a
clean stop, for 5 s and for 60 s, in the middle of a job) and the Shipway server
(60 s, the job ending meanwhile); the Docker Engine's are in
test_docker_engine_outages.py. Each time the job's pipeline ends honestly, and the
same runner process, never restarted by hand, then runs the next pipeline to success.

The outages are timed on purpose (that is the scenario); everything else waits on a
condition, with bounds only a hang exceeds.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.e2e.pipeline_helpers import Processes, wait_for_job
from tests.e2e.test_durability import let_go
from tests.e2e.test_push_to_pipeline import SECRET, finished, job_log, pushed_pipeline
from tests.e2e.test_runner_lost import runners
from tests.support.git import Repository
from tests.support.services import Deployment, RedisServer, ShipwayProcess, wait_until

pytestmark = pytest.mark.docker

HEAD = "image: shipway/busybox:1\njobs:\n"
# The job holds until the test lets it go (see test_durability.let_go).
UNTIL_LET_GO = "until [ -e /tmp/go ]; do sleep 0.1; done"
HELD = HEAD + f"  held: {{script: [echo started, '{UNTIL_LET_GO}', echo done]}}\n"
NEXT = HEAD + "  next: {script: echo next}\n"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisServer.start(workdir)
    yield server
    server.stop()


@pytest.fixture
def deployment(tmp_path: Path, own_redis: RedisServer) -> Deployment:
    """The server and runners of this test, on a Redis of its own to stop."""
    root = tmp_path / "deployment"
    root.mkdir()
    return Deployment(root=root, redis_url=own_redis.url)


@pytest.fixture
def project(deployment: Deployment, server: ShipwayProcess, repository: Repository) -> None:
    deployment.add_project("app", repository.bare, "t/app", SECRET)


def held_job(deployment: Deployment, repository: Repository) -> tuple[int, dict[str, Any]]:
    repository.commit({".shipway.yml": HELD})
    pipeline_id = pushed_pipeline(repository.push())
    return pipeline_id, wait_for_job(deployment, pipeline_id, "held", "running", timeout=120)


def problem_of(deployment: Deployment, runner_name: str) -> str:
    """What the runner's last heartbeat said keeps it from working, as the server shows it."""
    return str(runners(deployment).get(runner_name, {}).get("problem") or "")


def runs_the_next_pipeline(
    deployment: Deployment, repository: Repository, runner: ShipwayProcess, runner_name: str
) -> None:
    """The same runner process takes and runs a new pipeline, its heartbeat clear."""
    repository.commit({".shipway.yml": NEXT})
    pipeline = finished(deployment, pushed_pipeline(repository.push()), timeout=180)
    assert pipeline["status"] == "success", pipeline
    assert pipeline["jobs"][0]["runner"] == runner_name
    assert runner.process.poll() is None, runner.log()
    wait_until(lambda: not problem_of(deployment, runner_name), 30, "the runner's problem cleared")
    assert runners(deployment)[runner_name]["pid"] == runner.process.pid


@pytest.mark.parametrize(
    ("how", "seconds", "job_ends"),
    [
        ("kill", 5, "after"),
        ("stop", 5, "during"),
        ("kill", 60, "during"),
        ("stop", 60, "after"),
    ],
)
def test_a_runner_waits_out_redis(
    deployment: Deployment,
    own_redis: RedisServer,
    project: None,
    runner: ShipwayProcess,
    runner_name: str,
    repository: Repository,
    docker_client: docker.DockerClient,
    how: str,
    seconds: int,
    job_ends: str,
) -> None:
    pipeline_id, job = held_job(deployment, repository)
    if how == "kill":
        own_redis.kill()
    else:
        own_redis.stop()
    said = f"Redis at 127.0.0.1:{own_redis.port} unreachable since"
    wait_until(lambda: said in runner.log(), 60, "the runner logging that Redis is away")
    wait_until(lambda: said in problem_of(deployment, runner_name), 30, "its heartbeat saying so")
    if job_ends == "during":
        let_go(docker_client, job["id"])  # the job ends, and is reported, without Redis
        wait_for_job(deployment, pipeline_id, "held", "success", timeout=120)
    time.sleep(seconds)  # the outage itself
    own_redis.restart()
    if job_ends == "after":
        let_go(docker_client, job["id"])
    pipeline = finished(deployment, pipeline_id, timeout=180)
    assert pipeline["status"] == "success", pipeline
    assert "done" in job_log(deployment, job["id"])
    runs_the_next_pipeline(deployment, repository, runner, runner_name)
    assert "Redis at" in runner.log()
    assert "answers again" in runner.log()


@pytest.mark.parametrize("asked", ["while the job runs", "after the job"])
def test_a_runner_still_stops_on_request_while_redis_is_away(
    deployment: Deployment,
    own_redis: RedisServer,
    project: None,
    runner: ShipwayProcess,
    runner_name: str,
    repository: Repository,
    docker_client: docker.DockerClient,
    asked: str,
) -> None:
    pipeline_id, job = held_job(deployment, repository)
    own_redis.kill()
    said = f"Redis at 127.0.0.1:{own_redis.port} unreachable since"
    wait_until(lambda: said in runner.log(), 60, "the runner logging that Redis is away")
    if asked == "while the job runs":
        runner.process.send_signal(signal.SIGTERM)  # warm: the job may finish
        wait_until(lambda: "warm shut down requested" in runner.log(), 30, "the warm stop")
    let_go(docker_client, job["id"])
    assert finished(deployment, pipeline_id, timeout=120)["status"] == "success"
    if asked == "after the job":
        # Its worker's loop ended (RQ could not record the job's end): it waits for
        # Redis, with no job to let finish, so a stop is at once.
        wait_until(lambda: "a new worker starts once" in runner.log(), 60, "the wait for Redis")
        runner.process.send_signal(signal.SIGTERM)
    assert runner.process.wait(60) == 0, runner.log()


def test_a_runner_waits_out_the_server(
    deployment: Deployment,
    processes: Processes,
    runner_name: str,
    repository: Repository,
    docker_client: docker.DockerClient,
) -> None:
    server = processes.server()
    runner = processes.runner(runner_name)
    deployment.add_project("app", repository.bare, "t/app", SECRET)
    pipeline_id, job = held_job(deployment, repository)
    server.kill()
    said = f"Shipway server at {deployment.url} unreachable since"
    wait_until(lambda: said in runner.log(), 60, "the runner logging that the server is away")
    let_go(docker_client, job["id"])  # its last lines and its result wait for the server
    time.sleep(60)  # the outage itself
    processes.server()
    pipeline = finished(deployment, pipeline_id, timeout=180)
    assert pipeline["status"] == "success", pipeline
    log = job_log(deployment, job["id"])
    assert "done\n" in log
    assert log.endswith("Job succeeded\n")
    runs_the_next_pipeline(deployment, repository, runner, runner_name)
