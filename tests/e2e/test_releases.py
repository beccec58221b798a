"""Releases on the real Docker Engine: batches, a pause after the first, resume, and a
failing health check that stops the release with the later instances untouched."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from tests.conftest import remove_runner_containers
from tests.support.git import Repository
from tests.support.services import Deployment, ShipwayProcess, wait_until

pytestmark = pytest.mark.docker


@pytest.fixture
def app(docker_client: docker.DockerClient) -> Iterator[str]:
    name = f"rel{uuid.uuid4().hex[:6]}"
    yield name
    for container in docker_client.containers.list(
        all=True, filters={"label": f"io.shipway.project={name}"}
    ):
        container.remove(force=True)


@pytest.fixture
def deploy_runner(
    deployment: Deployment,
    server: ShipwayProcess,
    runner_name: str,
    busybox: str,
    docker_client: docker.DockerClient,
) -> Iterator[ShipwayProcess]:
    process = deployment.start_runner(runner_name, "build", "staging")
    yield process
    process.stop()
    remove_runner_containers(docker_client, runner_name)


def config(health_command: str) -> dict[str, Any]:
    return {
        "instances": 4,
        "ports": [{"container": 8000}],
        "command": ["httpd", "-f", "-p", "8000", "-h", "/srv/www"],
        "files": [{"path": "/srv/www/index.html", "content": "up\n"}],
        "health": {"command": health_command, "interval": 1, "timeout": 1, "retries": 2},
        "hooks": {"post_start": "echo started > /tmp/post-start", "pre_stop": "echo bye"},
    }


def release(deployment: Deployment, release_id: int, status: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    with deployment.api() as api:

        def reached() -> bool:
            found.update(api.get(f"/api/releases/{release_id}").json())
            return bool(found["status"] == status)

        wait_until(reached, 90, f"release {release_id} {status}", pause=0.2)
    return found


def test_batches_pause_resume_and_a_failed_health_check(
    deployment: Deployment,
    deploy_runner: ShipwayProcess,
    busybox: str,
    app: str,
    docker_client: docker.DockerClient,
    repository: Repository,
) -> None:
    deployment.add_project(app, repository.bare, f"t/{app}", "s" * 20)
    base = f"/api/projects/{app}/environments/staging"
    with deployment.api() as api:
        api.put(f"{base}/config", json=config("wget -q -O /dev/null http://127.0.0.1:8000/"))
        order = {"image": busybox, "batches": 2, "pause_mode": "after_first"}
        created = api.post(f"{base}/releases", json=order)
        assert created.status_code == 201, created.text
        first = created.json()
        assert first["batches"] == [
            [f"{app}-staging-1", f"{app}-staging-2"],
            [f"{app}-staging-3", f"{app}-staging-4"],
        ]
        busy = api.post(f"{base}/releases", json=order)
        assert busy.status_code == 409  # one release per environment at a time
    paused = release(deployment, first["id"], "paused")
    states = {i["name"]: i["status"] for i in paused["instances"]}
    assert states == {
        f"{app}-staging-1": "healthy",
        f"{app}-staging-2": "healthy",
        f"{app}-staging-3": "waiting",
        f"{app}-staging-4": "waiting",
    }
    steps = paused["instances"][0]["log"]
    for expected in (
        "no old container",
        "started the new container",
        "PostStart: exit 0",
        "health check: healthy",
    ):
        assert expected in steps
    resumed = deployment.cli("release", "resume", str(first["id"]))
    assert resumed.returncode == 0, resumed.stderr
    done = release(deployment, first["id"], "success")
    assert {i["status"] for i in done["instances"]} == {"healthy"}
    untouched = docker_client.containers.get(f"{app}-staging-3").id

    # A configuration whose health check fails: the release stops in its first batch.
    with deployment.api() as api:
        api.put(f"{base}/config", json=config("false"))
        second = api.post(
            f"{base}/releases", json={"image": busybox, "batches": 2, "pause_mode": "never"}
        ).json()
    failed = release(deployment, second["id"], "failed")
    assert failed["reason"] == f"{app}-staging-1: unhealthy"
    instances = {i["name"]: i for i in failed["instances"]}
    assert "PreStop: exit 0: bye" in instances[f"{app}-staging-1"]["log"]
    assert instances[f"{app}-staging-2"]["status"] == "waiting"
    assert docker_client.containers.get(f"{app}-staging-3").id == untouched
    with deployment.api() as api:
        history = api.get(f"{base}/releases").json()
    assert history["current_version"] == busybox
    assert [r["status"] for r in history["releases"]] == ["failed", "success"]
    listing = deployment.cli("release", "list", app, "staging")
    assert f"current version: {busybox}" in listing.stdout
