"""Killing real processes: the server at dispatch, a runner before it claims its job,
the server while an environment is held; and superseded pipelines."""

from __future__ import annotations

from pathlib import Path

import docker
import psutil
import pytest
import redis
from rq.job import Job as RqJob
from rq.job import JobStatus
from rq.serializers import JSONSerializer

from pipelines.model import queue_id
from tests.e2e.pipeline_helpers import Processes, current_jobs, wait_for_job
from tests.e2e.test_push_to_pipeline import SECRET, finished, job_log, pushed_pipeline
from tests.support.git import Repository
from tests.support.services import Deployment, RedisServer, ShipwayProcess, wait_until
from tests.support.test_run import job_containers

pytestmark = pytest.mark.docker

HEAD = "image: shipway/busybox:1\nstages: [build, test, deploy]\njobs:\n"


def kill_tree(process: ShipwayProcess) -> None:
    """kill -9 the process and every process it forked: a runner's job process runs
    in a session of its own (RQ's work horse calls setsid), so a process group
    kill would miss it."""
    parent = psutil.Process(process.process.pid)
    for child in parent.children(recursive=True):
        child.kill()
    parent.kill()
    process.process.wait()


def test_a_server_killed_at_dispatch_loses_no_pipeline(
    tmp_path: Path, docker_client: docker.DockerClient, busybox: str, runner_name: str
) -> None:
    # Redis of its own, away while the server marks the job pending: the server
    # dies between its database write and the enqueue, as a crash at dispatch does.
    own_redis = RedisServer.start(tmp_path)
    deployment = Deployment(root=tmp_path / "deployment", redis_url=own_redis.url)
    deployment.root.mkdir()
    processes = Processes(deployment, docker_client)
    repository = Repository(tmp_path / "repo")
    try:
        server = processes.server()
        deployment.add_project("app", repository.bare, "t/app", SECRET)
        own_redis.stop()
        repository.commit({".shipway.yml": HEAD + "  unit: {script: echo dispatched}\n"})
        pipeline_id = pushed_pipeline(repository.push())
        wait_for_job(deployment, pipeline_id, "unit", "pending")
        kill_tree(server)
        own_redis = RedisServer.start(tmp_path, port=own_redis.port)
        processes.server()
        processes.runner(runner_name)
        pipeline = finished(deployment, pipeline_id, timeout=60)
        assert pipeline["status"] == "success"
        assert "dispatched" in job_log(deployment, pipeline["jobs"][0]["id"])
    finally:
        processes.stop()
        own_redis.stop()


def test_a_task_taken_by_a_runner_that_died_before_claiming_runs_again(
    deployment: Deployment, processes: Processes, repository: Repository, runner_name: str
) -> None:
    server = processes.server()
    deployment.add_project("app", repository.bare, "t/app", SECRET)
    repository.commit({".shipway.yml": HEAD + "  unit: {script: echo claimed}\n"})
    pipeline_id = pushed_pipeline(repository.push())
    job = wait_for_job(deployment, pipeline_id, "unit", "pending")
    kill_tree(server)  # the runner cannot claim the job it takes: it retries, then dies
    doomed = processes.runner(runner_name)
    queue = redis.Redis.from_url(deployment.redis_url)
    try:

        def taken() -> bool:
            task = RqJob.fetch(queue_id(job["id"]), connection=queue, serializer=JSONSerializer)
            return task.get_status() == JobStatus.STARTED

        wait_until(taken, 30, "a runner taking the task")
    finally:
        queue.close()
    kill_tree(doomed)
    processes.server()
    processes.runner(f"{runner_name}-2")
    pipeline = finished(deployment, pipeline_id, timeout=60)
    assert pipeline["status"] == "success"
    (ran,) = pipeline["jobs"]
    assert (ran["attempt"], ran["runner"]) == (1, f"{runner_name}-2")


def let_go(docker_client: docker.DockerClient, job_id: int) -> None:
    """End a job whose script waits for /tmp/go in its container."""
    filters = job_containers(job_id)
    wait_until(lambda: bool(docker_client.containers.list(filters=filters)), 60, "its container")
    (container,) = docker_client.containers.list(filters=filters)
    assert container.exec_run(["touch", "/tmp/go"]).exit_code == 0


def test_one_deploy_per_environment_even_across_a_server_crash(
    deployment: Deployment,
    processes: Processes,
    repository: Repository,
    runner_name: str,
    docker_client: docker.DockerClient,
) -> None:
    server = processes.server()
    processes.runner(runner_name)
    processes.runner(f"{runner_name}-2")
    deployment.add_project("app", repository.bare, "t/app", SECRET, branches=["*"])
    # The first deploy holds the environment until the test lets it end.
    until_let_go = "until [ -e /tmp/go ]; do sleep 0.1; done"
    deploy = HEAD + f"  deploy: {{environment: staging, script: [echo start, '{until_let_go}']}}\n"
    repository.commit({".shipway.yml": deploy})
    first = pushed_pipeline(repository.push())
    holder = wait_for_job(deployment, first, "deploy", "running")
    repository.commit({"README": "second\n"})
    second = pushed_pipeline(repository.push("HEAD:refs/heads/other"))
    held = deployment.cli("environments", "app")
    assert f"staging      {holder['id']}" in held.stdout
    kill_tree(server)
    processes.server()
    waiting = current_jobs(deployment, second)["deploy"]
    assert waiting["status"] == "created"  # the lock outlived the server
    let_go(docker_client, holder["id"])
    done_first = finished(deployment, first)
    let_go(docker_client, wait_for_job(deployment, second, "deploy", "running")["id"])
    done_second = finished(deployment, second)
    assert (done_first["status"], done_second["status"]) == ("success", "success")
    assert done_second["jobs"][0]["started_at"] >= done_first["jobs"][0]["finished_at"]


def test_a_newer_pipeline_supersedes_older_ones_that_have_not_started(
    deployment: Deployment, processes: Processes, repository: Repository, runner_name: str
) -> None:
    processes.server()
    deployment.add_project("app", repository.bare, "t/app", SECRET)
    changed = deployment.cli("project", "set", "app", "--supersede", "on")
    assert changed.returncode == 0, changed.stderr
    assert "supersede on" in changed.stdout
    repository.commit({".shipway.yml": HEAD + "  unit: {script: echo built}\n"})
    older = pushed_pipeline(repository.push())
    wait_for_job(deployment, older, "unit", "pending")  # no runner yet
    repository.commit({"README": "newer\n"})
    newer = pushed_pipeline(repository.push())
    superseded = finished(deployment, older)
    assert superseded["status"] == "canceled"
    assert superseded["error"] == f"superseded by pipeline {newer}"
    processes.runner(runner_name)
    assert finished(deployment, newer)["status"] == "success"
    assert current_jobs(deployment, older)["unit"]["started_at"] is None
