"""Fixtures of the end-to-end tests: an application name whose containers are
removed afterwards, a runner serving the build and staging queues; for service
discovery, an etcd that containers reach, the registrar sidecar's image, a server
and runner that use that etcd and ``shipway confd`` rendering it into the test's
nginx; and servers and runners a test kills and starts again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from runners.discovery.traffic import bridge_gateway
from runners.tool_images import ensure_registrar
from tests.conftest import remove_runner_containers
from tests.e2e.pipeline_helpers import Processes
from tests.support.discovery import GRACE, ConfdProcess, make_confdir, running_confd
from tests.support.etcd import EtcdServer
from tests.support.nginx import NginxServer
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


@pytest.fixture
def etcd_also_on(docker_client: docker.DockerClient) -> str:
    """Registrars reach the test's etcd from their containers, through Docker's bridge."""
    return bridge_gateway(docker_client)


@pytest.fixture(scope="session")
def registrar(docker_client: docker.DockerClient) -> str:
    """The registrar sidecar's image, built once (a release would build it, slowly)."""
    return ensure_registrar(docker_client)


@pytest.fixture
def discovery_runner(
    app: str,
    deployment: Deployment,
    etcd: EtcdServer,
    runner_name: str,
    registrar: str,
    busybox: str,
) -> Iterator[ShipwayProcess]:
    """A server that writes traffic weights to etcd, and a runner of staging whose
    instances register there. It needs ``app`` so that it stops before the app's
    containers are removed: a batch still running would start them again."""
    deployment.extra_env["SHIPWAY_ETCD_URL"] = etcd.url
    server = deployment.start_server()
    runner = deployment.start_runner(runner_name, "staging")
    yield runner
    runner.stop()
    server.stop()


@pytest.fixture
def confd(
    tmp_path: Path, etcd: EtcdServer, nginx: NginxServer, runner_name: str
) -> Iterator[ConfdProcess]:
    """``shipway confd`` as a real process, rendering the test's etcd into its nginx."""
    confdir = make_confdir(tmp_path / "confd", nginx)
    name = f"{runner_name}-confd"
    with running_confd(confdir, etcd, name, GRACE, tmp_path / "confd.log") as agent:
        yield agent


@pytest.fixture
def processes(
    deployment: Deployment, docker_client: docker.DockerClient, busybox: str
) -> Iterator[Processes]:
    """Servers and runners the test starts (and kills, and starts again) itself."""
    started = Processes(deployment, docker_client)
    yield started
    started.stop()
