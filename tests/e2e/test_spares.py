"""A runner process and its pre-started containers (``runners.spares``): a spare an
earlier run left is removed as the runner starts; after each job the runner starts
one for the image's next job, which takes it (the job's log shows the container's
host name, its id's first 12 characters) and never shares it; the runner's spares
are removed when it stops."""

from __future__ import annotations

import docker
import pytest

from runners.job_containers import (
    LABEL_SPARE,
    SPARE_PREFIX,
    ContainerOwner,
    Listed,
    create_job_container,
    list_owned,
)
from tests.e2e.test_push_to_pipeline import (
    SECRET,
    finished,
    job_log,
    pipeline_file,
    pushed_pipeline,
)
from tests.support.git import Repository
from tests.support.services import Deployment, ShipwayProcess, wait_until
from tests.support.test_run import RUN_ID

pytestmark = pytest.mark.docker


def spares_of(client: docker.DockerClient, owner: ContainerOwner) -> list[Listed]:
    return [container for container in list_owned(client, owner) if container.spare_of]


def host_of(deployment: Deployment, repository: Repository, n: int) -> str:
    """Push a one-job pipeline; the host name its job ran on, once it succeeded."""
    script = [f"echo run {n}", "echo host=$(hostname)"]
    repository.commit({".shipway.yml": pipeline_file(("show", "build", script))}, f"run {n}")
    pipeline = finished(deployment, pushed_pipeline(repository.push()))
    assert pipeline["status"] == "success", pipeline
    log = job_log(deployment, pipeline["jobs"][0]["id"])
    (host,) = [line.removeprefix("host=") for line in log.splitlines() if line.startswith("host=")]
    return host


def test_a_runner_runs_each_job_in_a_spare_of_its_own_and_removes_its_spares_when_it_stops(
    deployment: Deployment,
    server: ShipwayProcess,
    runner_name: str,
    repository: Repository,
    busybox: str,
    docker_client: docker.DockerClient,
) -> None:
    deployment.add_project("app", repository.bare, "team/app", SECRET)
    owner = ContainerOwner(runner_name, RUN_ID)
    labels = {**owner.labels(), LABEL_SPARE: busybox}
    earlier = create_job_container(docker_client, busybox, f"{SPARE_PREFIX}{owner.key}-old", labels)
    earlier.start()  # a live spare of an earlier run of this runner
    runner = deployment.start_runner(runner_name)
    try:
        wait_until(lambda: not list_owned(docker_client, owner), 30, "the old spare removed")
        first = host_of(deployment, repository, 1)  # no spare yet: a container of its own
        wait_until(lambda: len(spares_of(docker_client, owner)) == 1, 30, "a spare started")
        (spare,) = spares_of(docker_client, owner)
        second = host_of(deployment, repository, 2)
        assert second == spare.id[:12]
        assert second != first
        wait_until(lambda: len(spares_of(docker_client, owner)) == 1, 30, "the next spare")
        (next_spare,) = spares_of(docker_client, owner)
        assert next_spare.id != spare.id
        assert host_of(deployment, repository, 3) == next_spare.id[:12]
        wait_until(lambda: len(spares_of(docker_client, owner)) == 1, 30, "the next spare")
    finally:
        runner.stop()
    assert list_owned(docker_client, owner) == [], runner.log()
    assert "removed 1 pre-started containers" in runner.log()
