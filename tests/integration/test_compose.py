"""Compose files rendered from the deployment configuration, checked by Debian's
docker-compose, and brought up for real: limits, ports without conflicts, mounted
files, per-instance data folders, health checks."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import yaml

from pipelines.deploy_config import parse_deploy_config
from pipelines.errors import InvalidInput
from server.compose import COMPOSE_FILE, RenderedCompose, check, render
from server.store import Store
from server.usecases.deploy_config import compose_for, set_config
from tests.support.services import wait_until
from tests.support.test_run import unique_name

pytestmark = pytest.mark.docker

CONFIG: dict[str, Any] = {
    "type": "stateful",
    "instances": 2,
    "resources": {"cpus": 0.5, "memory": "64m"},
    "ports": [{"container": 8000}],
    "environment": {"GREETING": 'hi "there" $HOME'},
    "files": [{"path": "/srv/www/index.html", "content": "hello from a mounted file\n"}],
    "directories": [{"host": "/tmp/shipway-compose-test", "container": "/data"}],
    "health": {"http": {"path": "/index.html", "port": 8000}, "interval": 1, "retries": 3},
}


def up(directory: Path, rendered: RenderedCompose, project: str) -> None:
    (directory / COMPOSE_FILE).write_text(rendered.compose)
    for name, content in rendered.files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(content)
    started = subprocess.run(
        ["docker-compose", "-p", project, "up", "-d"],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
    )
    assert started.returncode == 0, started.stderr


@pytest.fixture
def compose_projects(tmp_path: Path) -> Iterator[list[tuple[Path, str]]]:
    started: list[tuple[Path, str]] = []
    yield started
    for directory, project in started:
        subprocess.run(
            ["docker-compose", "-p", project, "down", "-v", "-t", "1"],
            cwd=directory,
            capture_output=True,
            check=False,
        )


def test_the_rendered_file_is_what_compose_reads(busybox: str) -> None:
    config = parse_deploy_config(CONFIG)
    rendered = render("hello", "staging", 3, config, busybox, {(1, 8000): 20001, (2, 8000): 20002})
    check(rendered)
    document = yaml.safe_load(rendered.compose)
    first = document["services"]["hello-staging-1"]
    assert first["ports"] == ["20001:8000"]
    assert first["mem_limit"] == 64 * 1024 * 1024
    # No YAML, no shell, no compose interpolation: "$" reaches compose doubled.
    assert first["environment"]["GREETING"] == 'hi "there" $$HOME'
    assert first["environment"]["SHIPWAY_INSTANCE"] == "hello-staging-1"
    assert "/tmp/shipway-compose-test/hello-staging-1:/data" in first["volumes"]  # stateful
    assert first["labels"]["io.shipway.config-version"] == "3"
    (name,) = rendered.files
    assert rendered.files[name] == "hello from a mounted file\n"
    assert re.fullmatch(r"files/[0-9a-f]{16}-index\.html", name)  # named by its content


def test_compose_refuses_what_it_cannot_run(busybox: str) -> None:
    rendered = render("hello", "staging", 1, parse_deploy_config({}), busybox, {})
    broken = RenderedCompose(
        rendered.compose.replace("restart: unless-stopped", "restart: [x]"), {}
    )
    with pytest.raises(InvalidInput, match="compose refused the file"):
        check(broken)


def test_two_applications_run_side_by_side(
    store: Store,
    busybox: str,
    compose_projects: list[tuple[Path, str]],
    tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:
    # httpd serves the mounted file: the same image and command for both apps.
    command = ["httpd", "-f", "-p", "8000", "-h", "/srv/www"]
    config = {**CONFIG, "type": "stateless", "directories": [], "command": command}
    served: dict[str, list[int]] = {}
    alpha, beta = unique_name("alpha"), unique_name("beta")
    for name in (alpha, beta):
        store.projects.create(name, f"/srv/{name}.git", f"g/{name}", "s" * 20, ("*",), ("*",))
        stored, created = set_config(store, name, "staging", config, "ops")
        assert (stored.version, created) == (1, True)
        assert set_config(store, name, "staging", config, "ops")[1] is False  # unchanged
        rendered = compose_for(store, name, "staging", busybox)[1]
        directory = tmp_path / name
        directory.mkdir()
        compose_projects.append((directory, f"shipway{name}"))
        up(directory, rendered, f"shipway{name}")
        document = yaml.safe_load(rendered.compose)
        served[name] = [
            int(service["ports"][0].split(":")[0]) for service in document["services"].values()
        ]
    ports = served[alpha] + served[beta]
    assert len(set(ports)) == 4  # no conflict across applications and instances
    again = yaml.safe_load(compose_for(store, alpha, "staging", busybox)[1].compose)
    assert [int(s["ports"][0].split(":")[0]) for s in again["services"].values()] == served[alpha]

    def healthy() -> bool:
        containers = docker_client.containers.list(filters={"label": f"io.shipway.project={alpha}"})
        states = [c.attrs["State"].get("Health", {}).get("Status") for c in containers]
        return len(states) == 2 and all(state == "healthy" for state in states)

    wait_until(healthy, 30, "alpha's instances healthy")
    for port in ports:
        answer = httpx.get(f"http://127.0.0.1:{port}/index.html", timeout=5)
        assert answer.text == "hello from a mounted file\n"
    running = docker_client.containers.get(f"{alpha}-staging-1")
    assert 'GREETING=hi "there" $HOME' in running.attrs["Config"]["Env"]
    inspected = running.attrs["HostConfig"]
    assert inspected["Memory"] == 64 * 1024 * 1024
    assert inspected["NanoCpus"] == 500_000_000
