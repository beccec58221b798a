"""Fixtures of the release tests: an application name whose containers are removed
afterwards, and a runner serving the build and staging queues."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from tests.conftest import remove_runner_containers
from tests.support.services import Deployment, ShipwayProcess
from tests.support.test_run import unique_name


@pytest.fixture
def app(docker_client: docker.DockerClient) -> Iterator[str]:
    name = unique_name("rel")
    yield name
    for container in docker_client.containers.list(
        all=True, filters={"label": f"io.shipway.project={name}"}
    ):
        container.remove(force=True)
    remove_compose_networks(docker_client, name)


def remove_compose_networks(docker_client: docker.DockerClient, app: str) -> None:
    """The networks docker-compose made for the application's environments: a
    release leaves them for its instances, and Docker has few address pools."""
    for network in docker_client.networks.list(names=[f"shipway{app}"]):
        if (network.name or "").startswith(f"shipway{app}"):
            network.remove()


@pytest.fixture
def deploy_runner(
    deployment: Deployment,
    server: ShipwayProcess,
    runner_name: str,
    busybox: str,
    docker_client: docker.DockerClient,
    app: str,
) -> Iterator[ShipwayProcess]:
    """Stopped before ``app`` removes the application's containers: a batch still
    running would otherwise make them again."""
    process = deployment.start_runner(runner_name, "build", "staging")
    yield process
    process.stop()
    remove_runner_containers(docker_client, runner_name)
