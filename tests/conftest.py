"""Fixtures for real services. Each test gets an empty Redis database, its own
state directory, etcd, nginx and ports, and leaves no container or process behind.
What tests make on the shared Docker Engine carries this run's mark
(:mod:`tests.support.test_run`), and clean-ups remove only what carries it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import docker.errors
import pytest
import redis
import sqlalchemy as sa

from runners.base_images import ensure_busybox
from runners.job_containers import ContainerOwner
from runners.tool_images import ensure_scanners
from server.store import Store
from tests.support.etcd import EtcdServer, running_etcd
from tests.support.git import Repository
from tests.support.nginx import NginxServer, running_nginx
from tests.support.ports import port_slot
from tests.support.services import (
    Deployment,
    PostgresServer,
    RedisServer,
    RegistryServer,
    ShipwayProcess,
)
from tests.support.test_run import RUN_ID, remove_containers, unique_name


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer.start(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer.start()
    yield server
    server.stop()


@contextmanager
def empty_database(request: pytest.FixtureRequest, folder: Path, prefix: str) -> Iterator[str]:
    """The URL of an empty database of the kind a parametrized fixture names
    (``request.param``, ``sqlite`` or ``postgresql``): a SQLite file in ``folder``, or
    a database of its own (``prefix`` and a random suffix) on the session's PostgreSQL
    server, dropped after. PostgreSQL starts only when a test asks for it."""
    if request.param == "sqlite":
        yield f"sqlite:///{folder / 'shipway.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    yield server.url.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with empty_database(request, tmp_path, "t") as url:
        yield url


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url, host_ports=port_slot().host_port_range)
    yield opened
    opened.close()


@pytest.fixture
def etcd_also_on() -> str | None:
    """A second address the test's etcd listens on besides loopback: none, but where
    containers must reach it (tests/e2e/conftest.py)."""
    return None


@pytest.fixture
def etcd(tmp_path: Path, etcd_also_on: str | None) -> Iterator[EtcdServer]:
    with running_etcd(tmp_path / "etcd", also_on=etcd_also_on) as server:
        yield server


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[NginxServer]:
    """nginx whose ``http {}`` includes ``site/upstreams.conf`` (empty at first), where
    the test's confd renders the upstreams."""
    (tmp_path / "site").mkdir()
    with running_nginx(tmp_path / "nginx", include=tmp_path / "site" / "upstreams.conf") as server:
        yield server


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"the Docker Engine is not reachable ({exc}): run scripts/services start")
    yield client
    client.close()


@pytest.fixture(scope="session")
def busybox(docker_client: docker.DockerClient) -> str:
    return ensure_busybox(docker_client)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = RegistryServer.start(tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def scanners(docker_client: docker.DockerClient) -> str:
    """The scanners image (Debian, ruff, bandit): built once, kept like the base images."""
    return ensure_scanners(docker_client)


@pytest.fixture
def deployment(tmp_path: Path, redis_url: str, registry: RegistryServer) -> Deployment:
    return Deployment(root=tmp_path, redis_url=redis_url, registry=registry.address)


@pytest.fixture
def server(deployment: Deployment) -> Iterator[ShipwayProcess]:
    process = deployment.start_server()
    yield process
    process.stop()


def remove_runner_containers(client: docker.DockerClient, runner: str) -> None:
    """The job containers a runner of this test run left (none, when all went well)."""
    remove_containers(client, ContainerOwner(runner, RUN_ID).label_filters())


@pytest.fixture
def runner_name(docker_client: docker.DockerClient) -> Iterator[str]:
    name = unique_name("-runner-")
    yield name
    remove_runner_containers(docker_client, name)


@pytest.fixture
def owner(runner_name: str) -> ContainerOwner:
    """Job containers' owner for tests that drive an executor in-process."""
    return ContainerOwner(runner_name, RUN_ID)


@pytest.fixture
def runner(
    deployment: Deployment, server: ShipwayProcess, runner_name: str, busybox: str
) -> Iterator[ShipwayProcess]:
    process = deployment.start_runner(runner_name)
    yield process
    process.stop()


@pytest.fixture
def repository(tmp_path: Path) -> Repository:
    return Repository(tmp_path / "repo")


@pytest.fixture
def images_made(docker_client: docker.DockerClient, registry: RegistryServer) -> Iterator[None]:
    """Remove the images the test made: every image job pushes to this run's own
    registry, so its images are named after it; others' images stay."""
    yield
    for image in docker_client.images.list():
        for tag in image.tags:
            if tag.startswith(f"{registry.address}/"):
                docker_client.images.remove(tag, force=True)
