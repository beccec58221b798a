"""The registry away (killed with kill -9, or stopped cleanly) while an image job
pushes and while a release pulls its image, then started again on its port and its
storage. The push and the pull wait for it, saying so in the job's log and in the
instance's steps, and go on once it answers: the job succeeds, the release too, and
the instance the release replaces serves all along (the image is pulled before the
old container is touched). The runners are never restarted and take the next job.

The outage begins before the pipeline and the release, so that both meet it, and
lasts at least its length, and until both are seen waiting. Only the outage is
timed; everything else waits on conditions, with bounds only a hang exceeds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import pytest

from tests.conftest import remove_runner_containers
from tests.e2e.pipeline_helpers import release
from tests.e2e.test_dependency_outages import runs_the_next_pipeline
from tests.e2e.test_push_to_pipeline import SECRET, finished, job_log, pushed_pipeline
from tests.e2e.test_release_coverage import PATIENT, served
from tests.support.git import Repository
from tests.support.outages import How, RegistryOutage
from tests.support.services import Deployment, RegistryServer, ShipwayProcess, wait_until

pytestmark = pytest.mark.docker

ENDS_WITHIN = 180  # seconds after the registry is back: generous on a busy machine
PIPELINE = """
image: shipway/busybox:1
stages: [package]
jobs:
  image:
    stage: package
    kind: image
    dockerfile: Dockerfile
"""
DOCKERFILE = """FROM shipway/busybox:1
COPY index.html /srv/www/index.html
CMD ["httpd", "-f", "-p", "8000", "-h", "/srv/www"]
"""
CONFIG = {
    "instances": 1,
    "ports": [{"container": 8000}],
    "health": {"http": {"path": "/", "port": 8000}, **PATIENT},
}


@pytest.fixture
def registry_outage(tmp_path: Path, docker_client: docker.DockerClient) -> Iterator[RegistryOutage]:
    """A registry of the test's own, to take away; the images pushed to it or pulled
    from it (by digest: those have no tag) removed after, and only those."""
    outage = RegistryOutage(RegistryServer.start(tmp_path / "registry"))
    yield outage
    outage.server.stop()
    ours = f"{outage.server.address}/"
    for image in docker_client.images.list():
        names = [*image.tags, *(image.attrs.get("RepoDigests") or [])]
        if image.id and names and all(name.startswith(ours) for name in names):
            docker_client.images.remove(image.id, force=True)


@pytest.fixture
def deployment(tmp_path: Path, redis_url: str, registry_outage: RegistryOutage) -> Deployment:
    root = tmp_path / "deployment"
    root.mkdir()
    return Deployment(root=root, redis_url=redis_url, registry=registry_outage.server.address)


@pytest.fixture
def staging_runner(
    app: str,
    deployment: Deployment,
    server: ShipwayProcess,
    runner_name: str,
    docker_client: docker.DockerClient,
) -> Iterator[ShipwayProcess]:
    """Beside the build runner: a release's pull and an image job's push wait at once.
    Stopped before ``app`` removes the application's containers."""
    name = f"{runner_name}-deploy"
    process = deployment.start_runner(name, "staging")
    yield process
    process.stop()
    remove_runner_containers(docker_client, name)


def built(repository: Repository, content: str) -> int:
    """Commit a site and push: the image job's pipeline."""
    repository.commit({".shipway.yml": PIPELINE, "Dockerfile": DOCKERFILE, "index.html": content})
    return pushed_pipeline(repository.push())


def image_of(deployment: Deployment, pipeline_id: int) -> dict[str, Any]:
    pipeline = finished(deployment, pipeline_id, timeout=180)
    assert pipeline["status"] == "success", pipeline
    (image,) = pipeline["images"]
    return dict(image)


def ordered(deployment: Deployment, app: str, image: str) -> int:
    with deployment.api() as api:
        order = {"image": image, "batches": 1, "pause_mode": "never"}
        created = api.post(f"/api/projects/{app}/environments/staging/releases", json=order)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def shown(deployment: Deployment, release_id: int) -> dict[str, Any]:
    with deployment.api() as api:
        found: dict[str, Any] = api.get(f"/api/releases/{release_id}").json()
    return found


@pytest.mark.parametrize(("how", "seconds"), [("kill", 60), ("stop", 5)])
def test_a_push_and_a_pull_wait_out_the_registry(
    deployment: Deployment,
    registry_outage: RegistryOutage,
    runner: ShipwayProcess,
    staging_runner: ShipwayProcess,
    runner_name: str,
    app: str,
    repository: Repository,
    docker_client: docker.DockerClient,
    how: How,
    seconds: int,
) -> None:
    deployment.add_project(app, repository.bare, f"t/{app}", SECRET)
    with deployment.api() as api:
        put = api.put(f"/api/projects/{app}/environments/staging/config", json=CONFIG)
        assert put.status_code < 300, put.text
    first = image_of(deployment, built(repository, "one\n"))
    release(deployment, ordered(deployment, app, first["reference"]), "success")
    instance = f"{app}-staging-1"
    assert served(docker_client, instance) == "one\n"  # the instance the release replaces
    built_before = image_of(deployment, built(repository, "two\n"))
    second = str(built_before["reference"])
    # The release must pull it: the engine has it no more (the registry still does).
    docker_client.images.remove(f"{built_before['repository']}:{built_before['tag']}")
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(second)

    registry = registry_outage.server.address
    said = f"the registry at {registry} is unreachable since"
    began = time.monotonic()
    registry_outage.begin(how)
    try:
        pipeline_id = built(repository, "three\n")
        release_id = ordered(deployment, app, second)

        def job_waits() -> bool:
            jobs = finished_or_not(deployment, pipeline_id)["jobs"]
            return bool(jobs) and said in job_log(deployment, jobs[0]["id"])

        def release_waits() -> bool:
            instances = shown(deployment, release_id)["instances"]
            return said in str(instances[0]["log"])

        wait_until(job_waits, 120, "the image job saying it waits for the registry", pause=0.5)
        wait_until(release_waits, 120, "the release saying it waits for the registry", 0.5)
        # Pulled before anything else: the old instance serves through the outage.
        assert served(docker_client, instance) == "one\n"
        assert shown(deployment, release_id)["status"] == "running"
        time.sleep(max(0.0, seconds - (time.monotonic() - began)))  # the outage itself
    finally:
        registry_outage.end()
    lasted = time.monotonic() - began

    pipeline = finished(deployment, pipeline_id, timeout=ENDS_WITHIN)
    job_ended = time.monotonic() - began
    assert pipeline["status"] == "success", pipeline
    (third,) = pipeline["images"]
    manifest = httpx.head(
        f"http://{registry}/v2/{app}/manifests/{third['tag']}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    assert manifest.headers["Docker-Content-Digest"] == third["digest"]
    log = job_log(deployment, pipeline["jobs"][0]["id"])
    assert f"the registry at {registry} answers again after" in log

    wait_until(
        lambda: shown(deployment, release_id)["status"] in ("success", "failed"),
        ENDS_WITHIN,
        "the release ending",
        pause=0.5,
    )
    release_ended = time.monotonic() - began
    done = shown(deployment, release_id)
    assert done["status"] == "success", done
    steps = str(done["instances"][0]["log"])
    assert f"the registry at {registry} answers again after" in steps
    assert f"pulled {second}" in steps
    assert served(docker_client, instance) == "two\n"

    assert staging_runner.process.poll() is None, staging_runner.log()
    runs_the_next_pipeline(deployment, repository, runner, runner_name)
    print(
        f"registry {how}, away {lasted:.0f}s: the job succeeded {job_ended:.0f}s and the "
        f"release {release_ended:.0f}s after the outage began"
    )


def finished_or_not(deployment: Deployment, pipeline_id: int) -> dict[str, Any]:
    with deployment.api() as api:
        found: dict[str, Any] = api.get(f"/api/pipelines/{pipeline_id}").json()
    return found
