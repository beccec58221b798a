"""Releases on the real Docker Engine: batches, a pause after the first, resume, and a
failing health check that stops the release with the later instances untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest

from tests.e2e.pipeline_helpers import SERVE, release, release_history, site_release_jobs
from tests.e2e.test_push_to_pipeline import finished, job_log, pushed_pipeline
from tests.support.git import Repository
from tests.support.services import Deployment, RegistryServer, ShipwayProcess

pytestmark = pytest.mark.docker


def config(health_command: str) -> dict[str, Any]:
    return {
        "instances": 4,
        "ports": [{"container": 8000}],
        "command": SERVE,
        "files": [{"path": "/srv/www/index.html", "content": "up\n"}],
        "health": {"command": health_command, "interval": 1, "timeout": 5, "retries": 3},
        "hooks": {"post_start": "echo started > /tmp/post-start", "pre_stop": "echo bye"},
    }


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


def test_retry_rollback_memory_and_stateful(
    deployment: Deployment,
    deploy_runner: ShipwayProcess,
    busybox: str,
    app: str,
    docker_client: docker.DockerClient,
    repository: Repository,
    tmp_path: Path,
) -> None:
    deployment.add_project(app, repository.bare, f"t/{app}", "s" * 20)
    base = f"/api/projects/{app}/environments/staging"
    flags = tmp_path / "flags"
    flags.mkdir()
    gated = {
        "type": "stateful",
        "instances": 3,
        "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
        "directories": [{"host": str(flags), "container": "/flags"}],
        "health": {"command": "test -f /flags/ok", "interval": 1, "timeout": 5, "retries": 3},
    }
    other = f"shipway/test-release:{app}"
    docker_client.images.get(busybox).tag(other)
    try:
        with deployment.api() as api:
            refused = api.post(f"{base}/rollback", json={"image": busybox, "reason": "bad"})
            assert refused.status_code == 409
            assert "never had a successful release" in refused.json()["error"]
            api.put(f"{base}/config", json=gated)
            order = {"image": busybox, "batches": 1, "pause_mode": "never"}
            first = api.post(f"{base}/releases", json=order).json()
        # Stateful: one by one, in order, whatever the order asked.
        assert first["batches"] == [[f"{app}-staging-{i}"] for i in (1, 2, 3)]
        failed = release(deployment, first["id"], "failed")
        assert failed["reason"] == f"{app}-staging-1: unhealthy"

        # Each stateful instance has its own data folder; make every one healthy.
        for index in (1, 2, 3):
            (flags / f"{app}-staging-{index}").mkdir(exist_ok=True)
            (flags / f"{app}-staging-{index}" / "ok").write_text("")
        retried = deployment.cli("release", "retry", str(first["id"]))
        assert retried.returncode == 0, retried.stderr
        release(deployment, first["id"], "success")

        with deployment.api() as api:
            second = api.post(
                f"{base}/releases",
                json={"image": other, "grouping": "all_at_once", "pause_mode": "never"},
            ).json()
        release(deployment, second["id"], "success")
        rolled = deployment.cli(
            "release", "rollback", app, "staging", "--image", busybox, "--reason", "login broke"
        )
        assert rolled.returncode == 0, rolled.stderr
        assert f"rollback to release {first['id']}: login broke" in rolled.stdout
        with deployment.api() as api:
            history = api.get(f"{base}/releases").json()
        release(deployment, history["releases"][0]["id"], "success")
        with deployment.api() as api:
            assert api.get(f"{base}/releases").json()["current_version"] == busybox
            never = api.post(f"{base}/rollback", json={"image": "nope:1", "reason": "x"})
            assert never.status_code == 409

            # Over its memory limit, an instance is killed and the release says so.
            api.put(
                f"{base}/config",
                json={
                    "instances": 1,
                    "resources": {"memory": "16m"},
                    "command": ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
                },
            )
            oom = api.post(
                f"{base}/releases", json={"image": busybox, "batches": 1, "pause_mode": "never"}
            ).json()
        killed = release(deployment, oom["id"], "failed")
        assert killed["reason"] == f"{app}-staging-1: killed: over its memory limit"
    finally:
        docker_client.images.remove(other, force=True)


def test_a_pipelines_deploy_job_releases_its_image_to_staging(
    deployment: Deployment,
    deploy_runner: ShipwayProcess,
    busybox: str,
    app: str,
    repository: Repository,
    registry: RegistryServer,
    images_made: None,
) -> None:
    deployment.add_project(app, repository.bare, f"t/{app}", "s" * 20)
    with deployment.api() as api:
        api.put(
            f"/api/projects/{app}/environments/staging/config",
            json={
                "instances": 2,
                "ports": [{"container": 8000}],
                "health": {"command": "wget -q -O /dev/null http://127.0.0.1:8000/", "interval": 1},
            },
        )
    repository.commit(
        {
            ".shipway.yml": "stages: [package, deploy]\njobs:\n"
            + site_release_jobs(busybox, staging={"release": {"grouping": "one_by_one"}}),
            "site/index.html": "deployed by a pipeline\n",
        }
    )
    pipeline = finished(deployment, pushed_pipeline(repository.push()), timeout=120)
    jobs = {job["name"]: job for job in pipeline["jobs"]}
    assert pipeline["status"] == "success", job_log(deployment, jobs["staging"]["id"])
    (image,) = pipeline["images"]
    history = release_history(deployment, app)
    assert history["current_version"] == image["reference"]
    (made,) = history["releases"]
    assert made["batches"] == [[f"{app}-staging-1"], [f"{app}-staging-2"]]
    assert f"Release {made['id']} succeeded" in job_log(deployment, jobs["staging"]["id"])
