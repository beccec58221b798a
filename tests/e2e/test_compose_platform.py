"""docker-compose.yml runs the whole platform: a pipeline goes green in containers."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import pytest

from tests.conftest import remove_runner_containers
from tests.support.git import Repository
from tests.support.services import free_port, wait_until
from tests.support.test_run import RUN_ID, unique_name

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
API_TOKEN = "compose-test-api-token"


@pytest.fixture
def platform(
    docker_client: docker.DockerClient, busybox: str, runner_name: str
) -> Iterator[tuple[str, Path]]:
    repos = Path(tempfile.mkdtemp(prefix="shipway-compose-repos-"))
    tag = unique_name()
    env = {
        **os.environ,
        "COMPOSE_PROJECT_NAME": unique_name("platform"),
        "SHIPWAY_IMAGE_TAG": tag,
        "SHIPWAY_RUNNER_NAME": runner_name,
        "SHIPWAY_INSTALLATION": RUN_ID,
        "SHIPWAY_PORT": str(free_port()),
        "SHIPWAY_REPOS": str(repos),
        "SHIPWAY_API_TOKEN": API_TOKEN,
        "SHIPWAY_RUNNER_TOKEN": "compose-test-runner-token",
    }
    try:
        started = subprocess.run(
            [str(ROOT / "scripts/platform"), "up"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert started.returncode == 0, started.stdout + started.stderr
        yield f"http://127.0.0.1:{env['SHIPWAY_PORT']}", repos
    finally:
        subprocess.run(
            ["docker-compose", "down", "-v", "--remove-orphans"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            check=False,
        )
        remove_runner_containers(docker_client, runner_name)
        for image in (f"shipway/shipway:{tag}", f"shipway/redis:{tag}"):
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(image)
        shutil.rmtree(repos, ignore_errors=True)


def test_the_platform_runs_a_pipeline(platform: tuple[str, Path], runner_name: str) -> None:
    url, repos = platform
    repository = Repository(repos / "app")
    pipeline_file = (
        "image: shipway/busybox:1\njobs:\n  hello:\n    script: [echo hello-from-compose]\n"
    )
    repository.commit({".shipway.yml": pipeline_file})
    repository.push()
    # The repository is at /repos/app/app.git inside the server and runner containers.
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=10
    ) as api:
        api.post(
            "/api/projects",
            json={"name": "app", "clone_url": "/repos/app/app.git", "webhook_secret": "s" * 20},
        ).raise_for_status()
        pipeline_id = api.post("/api/projects/app/pipelines", json={"branch": "main"}).json()["id"]
        pipeline: dict[str, Any] = {}

        def done() -> bool:
            pipeline.update(api.get(f"/api/pipelines/{pipeline_id}").json())
            return pipeline["status"] in ("success", "failed", "canceled")

        wait_until(done, 120, "the pipeline finishing", pause=0.5)
        assert pipeline["status"] == "success", pipeline
        log = api.get(f"/api/jobs/{pipeline['jobs'][0]['id']}/log").text
    assert "hello-from-compose" in log
    assert f"Running on {runner_name}" in log
