"""An image job from git push to a pushed image whose digest the pipeline records."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.test_push_to_pipeline import SECRET, finished, job_log, pushed_pipeline
from tests.support.git import Repository
from tests.support.services import Deployment, RegistryServer, ShipwayProcess

pytestmark = pytest.mark.docker

PIPELINE = """
image: shipway/busybox:1
stages: [test, build]
jobs:
  unit:
    stage: test
    script: sh test.sh
  image:
    stage: build
    kind: image
    layers:
      os: shipway/busybox:1
      middleware:
        run: [mkdir -p /opt/greeter, echo 1.0 > /opt/greeter/version]
      app:
        copy: [src/]
        command: [sh, hello.sh]
"""


def test_a_push_builds_and_pushes_a_layered_image(
    deployment: Deployment,
    server: ShipwayProcess,
    runner: ShipwayProcess,
    repository: Repository,
    registry: RegistryServer,
    images_made: None,
) -> None:
    deployment.add_project("greeter", repository.bare, "team/greeter", SECRET)
    sha = repository.commit(
        {
            ".shipway.yml": PIPELINE,
            "src/hello.sh": "echo hello from the image\n",
            "test.sh": "sh src/hello.sh | grep -q hello\n",
        }
    )
    pipeline = finished(deployment, pushed_pipeline(repository.push()), timeout=120)
    assert pipeline["status"] == "success", pipeline
    (image,) = pipeline["images"]
    assert (image["repository"], image["tag"]) == (f"{registry.address}/greeter", sha)
    manifest = httpx.head(
        f"http://{registry.address}/v2/greeter/manifests/{sha}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    assert manifest.headers["Docker-Content-Digest"] == image["digest"]
    assert image["middleware"].startswith(f"{registry.address}/shipway-middleware:")
    jobs = {job["name"]: job for job in pipeline["jobs"]}
    log = job_log(deployment, jobs["image"]["id"])
    assert "Middleware" in log
    assert f"Pushed {registry.address}/greeter:{sha[:12]}" in log
    shown = deployment.cli("pipeline", str(pipeline["id"]))
    assert f"image {registry.address}/greeter:{sha[:12]} {image['digest']}" in shown.stdout
