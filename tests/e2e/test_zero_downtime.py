"""A release under steady load fails no request (S3, L3): instances register in a
real etcd through their registrar sidecars, the confd agent routes a real nginx to
them, and the release takes each instance out of traffic before stopping it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from confd.agent import Agent
from confd.etcd_view import EtcdView
from confd.resources import load_resources
from tests.e2e.pipeline_helpers import release
from tests.support.discovery import Load, make_confdir, registering_web
from tests.support.etcd import EtcdServer
from tests.support.git import Repository
from tests.support.nginx import NginxServer
from tests.support.services import Deployment, ShipwayProcess, wait_until

pytestmark = pytest.mark.docker


@pytest.fixture
def agent(tmp_path: Path, etcd: EtcdServer, nginx: NginxServer) -> Iterator[Agent]:
    confdir = make_confdir(tmp_path / "confd", nginx)
    running = Agent(load_resources(confdir), EtcdView(etcd.url), name="test-agent")
    thread = threading.Thread(target=running.run, name="confd agent", daemon=True)
    thread.start()
    yield running
    running.stop()
    thread.join(10)


def test_a_release_under_load_fails_no_request(
    deployment: Deployment,
    discovery_runner: ShipwayProcess,
    agent: Agent,
    nginx: NginxServer,
    busybox: str,
    app: str,
    repository: Repository,
    docker_client: docker.DockerClient,
) -> None:
    deployment.add_project(app, repository.bare, f"t/{app}", "s" * 20)
    base = f"/api/projects/{app}/environments/staging"
    order = {"image": busybox, "batches": 2, "pause_mode": "never"}
    with deployment.api() as api:
        api.put(f"{base}/config", json=registering_web("one\n"))
        first = api.post(f"{base}/releases", json=order).json()
    release(deployment, first["id"], "success")
    wait_until(lambda: nginx.get("/").text == "one\n", 60, "nginx routing to the instances")

    with Load(nginx) as load:
        wait_until(lambda: load.answers["one\n"] > 20, 60, "load flowing")
        with deployment.api() as api:
            api.put(f"{base}/config", json=registering_web("two\n"))
            second = api.post(f"{base}/releases", json=order).json()
        done = release(deployment, second["id"], "success")
        wait_until(lambda: load.answers["two\n"] > 20, 60, "the new version answering")
    assert load.failures == []
    assert set(load.answers) == {"one\n", "two\n"}
    steps = done["instances"][0]["log"]
    for expected in (
        "out of traffic: deleted",
        "nginx has it: test-agent",
        "drained for 1s",
        "registered as",
        "back in traffic",
    ):
        assert expected in steps, steps

    # Discovery turned off: the next release removes the registrars it no longer runs.
    plain = {k: v for k, v in registering_web("three\n").items() if k != "discovery"}
    with deployment.api() as api:
        api.put(f"{base}/config", json=plain)
        third = api.post(f"{base}/releases", json=order).json()
    done = release(deployment, third["id"], "success")
    assert "removed the registrar of an earlier configuration" in done["instances"][0]["log"]
    assert not docker_client.containers.list(
        all=True, filters={"label": f"io.shipway.project={app}", "name": "registrar"}
    )
