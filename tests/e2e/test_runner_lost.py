"""A runner killed mid-job (kill -9): the server fails the job with "runner lost"
within 30 seconds, instead of leaving it running forever. Only the job's process
killed: the runner removes its container and reports the job lost at once."""

from __future__ import annotations

from typing import Any

import docker
import psutil
import pytest

from tests.conftest import remove_runner_containers
from tests.e2e.pipeline_helpers import wait_for_job
from tests.e2e.test_durability import kill_tree
from tests.e2e.test_push_to_pipeline import SECRET, finished, pipeline_file, pushed_pipeline
from tests.support.git import Repository
from tests.support.services import Deployment, ShipwayProcess, wait_until
from tests.support.test_run import job_containers

pytestmark = pytest.mark.docker


@pytest.fixture
def project(deployment: Deployment, server: ShipwayProcess, repository: Repository) -> None:
    deployment.add_project("app", repository.bare, "t/app", SECRET)


def running_job(deployment: Deployment, repository: Repository) -> tuple[int, dict[str, Any]]:
    repository.commit(
        {".shipway.yml": pipeline_file(("hang", "test", ["echo started", "sleep 300"]))}
    )
    pipeline_id = pushed_pipeline(repository.push())
    job: dict[str, Any] = {}
    with deployment.api() as api:

        def is_running() -> bool:
            jobs = api.get(f"/api/pipelines/{pipeline_id}/jobs").json()
            job.update(jobs[0] if jobs else {})
            return job.get("status") == "running"

        wait_until(is_running, 120, "the job running")
    return pipeline_id, job


def runners(deployment: Deployment) -> dict[str, dict[str, Any]]:
    with deployment.api() as api:
        return {runner["name"]: runner for runner in api.get("/api/runners").json()}


def test_a_killed_runner_loses_its_job(
    deployment: Deployment, project: None, runner_name: str, busybox: str, repository: Repository
) -> None:
    runner = deployment.start_runner(runner_name)
    try:
        pipeline_id, job = running_job(deployment, repository)
        wait_until(
            lambda: runners(deployment)[runner_name]["current_job_id"] == job["id"],
            15,
            "a heartbeat naming the job",
        )
        assert runners(deployment)[runner_name]["online"]
        kill_tree(runner)  # the worker and its job's process, as when a host dies
        # How soon (20 s without a heartbeat) is bench/reaction_times.py's figure.
        pipeline = finished(deployment, pipeline_id, timeout=120)
        assert pipeline["status"] == "failed"
        (lost,) = pipeline["jobs"]
        assert (lost["status"], lost["failure_reason"]) == (
            "failed",
            f"runner lost: no heartbeat from {runner_name}",
        )
        listing = deployment.cli("runners")
        assert runner_name in listing.stdout
        assert "offline" in listing.stdout
    finally:
        runner.stop()


def test_a_killed_job_process_under_a_live_runner_is_reported_by_it(
    deployment: Deployment,
    project: None,
    runner_name: str,
    busybox: str,
    repository: Repository,
    docker_client: docker.DockerClient,
) -> None:
    runner = deployment.start_runner(runner_name)
    try:
        pipeline_id, _ = running_job(deployment, repository)
        worker = psutil.Process(runner.process.pid)
        wait_until(lambda: bool(worker.children()), 60, "the job's forked process")
        for child in worker.children():
            child.kill()
        pipeline = finished(deployment, pipeline_id, timeout=120)
        (lost,) = pipeline["jobs"]
        # Reported by the live runner itself, not found later by a missing heartbeat.
        assert lost["failure_reason"] == "runner lost: the job's process died (signal 9)"
        assert runners(deployment)[runner_name]["online"]
        assert docker_client.containers.list(filters=job_containers(lost["id"])) == []
    finally:
        runner.stop()


def test_a_job_lost_with_its_runner_is_retried_when_it_allows(
    deployment: Deployment,
    project: None,
    runner_name: str,
    busybox: str,
    repository: Repository,
    docker_client: docker.DockerClient,
) -> None:
    repository.commit(
        {
            ".shipway.yml": "image: shipway/busybox:1\njobs:\n  hang:\n"
            "    retry: {max: 1, when: [runner_lost]}\n"
            "    script: ['if [ $SHIPWAY_JOB_ATTEMPT = 1 ]; then sleep 300; fi', echo recovered]\n"
        }
    )
    first = deployment.start_runner(runner_name)
    second: ShipwayProcess | None = None
    try:
        pipeline_id = pushed_pipeline(repository.push())
        wait_for_job(deployment, pipeline_id, "hang", "running")
        kill_tree(first)
        second = deployment.start_runner(f"{runner_name}-2")
        pipeline = finished(deployment, pipeline_id, timeout=60)
        assert pipeline["status"] == "success"
        lost, retried = pipeline["jobs"]
        assert (lost["attempt"], lost["status"], lost["failure_kind"]) == (
            1,
            "failed",
            "runner_lost",
        )
        assert (retried["attempt"], retried["status"]) == (2, "success")
    finally:
        if second is not None:
            second.stop()
        remove_runner_containers(docker_client, f"{runner_name}-2")


def test_a_killed_runner_starts_again_under_its_name_at_once(
    deployment: Deployment, project: None, runner_name: str, busybox: str, repository: Repository
) -> None:
    # RQ keeps a killed worker's record for minutes and refuses a worker of the
    # same name meanwhile; the runner clears the record of its own earlier life.
    first = deployment.start_runner(runner_name)
    wait_until(lambda: "Listening on build" in first.log(), 60, "the runner listening")
    kill_tree(first)
    again = deployment.start_runner(runner_name)
    try:
        repository.commit({".shipway.yml": pipeline_file(("unit", "test", ["echo again"]))})
        pipeline = finished(deployment, pushed_pipeline(repository.push()), timeout=120)
        assert pipeline["status"] == "success", again.log()
        assert pipeline["jobs"][0]["runner"] == runner_name
    finally:
        again.stop()
