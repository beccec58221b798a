"""Steering releases on the real Docker Engine: the pause mode switched mid-release,
a pause after every batch, close, a rolling restart, an instance's container logs,
instances outside a failed batch still serving, and a release whose runner dies."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.conftest import remove_runner_containers
from tests.e2e.pipeline_helpers import release
from tests.e2e.test_durability import kill_tree
from tests.support.git import Repository
from tests.support.services import Deployment, ShipwayProcess, wait_until

pytestmark = pytest.mark.docker

SERVE = "echo hello from $SHIPWAY_INSTANCE; exec httpd -f -p 8000 -h /srv/www"


def web(content: str, health: str = "wget -q -O /dev/null http://127.0.0.1:8000/") -> Any:
    return {
        "instances": 3,
        "ports": [{"container": 8000}],
        "command": ["sh", "-c", SERVE],
        "files": [{"path": "/srv/www/index.html", "content": content}],
        "health": {"command": health, "interval": 1, "timeout": 5, "retries": 3},
    }


def served(docker_client: docker.DockerClient, name: str) -> str:
    """What the instance answers on its host port, through the published port."""
    container = docker_client.containers.get(name)
    binding = container.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]
    url = f"http://127.0.0.1:{binding['HostPort']}/"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return str(answer.read().decode())


def test_modes_switched_mid_release_close_restart_and_logs(
    deployment: Deployment,
    deploy_runner: ShipwayProcess,
    busybox: str,
    app: str,
    docker_client: docker.DockerClient,
    repository: Repository,
) -> None:
    deployment.add_project(app, repository.bare, f"t/{app}", "s" * 20)
    base = f"/api/projects/{app}/environments/staging"
    names = [f"{app}-staging-{i}" for i in (1, 2, 3)]
    with deployment.api() as api:
        api.put(f"{base}/config", json=web("one\n"))
        first = api.post(
            f"{base}/releases",
            json={"image": busybox, "batches": 3, "pause_mode": "after_every"},
        ).json()
    # After every batch: paused after the first, resumed, paused after the second.
    assert release(deployment, first["id"], "paused")["next_batch"] == 1
    deployment.cli("release", "resume", str(first["id"]))
    assert release(deployment, first["id"], "paused")["next_batch"] == 2
    assert {served(docker_client, name) for name in names[:2]} == {"one\n"}
    deployment.cli("release", "resume", str(first["id"]))
    release(deployment, first["id"], "success")

    # A new version paused after its first batch; switched to "never" while paused,
    # it goes on to the end once resumed, with no further pause.
    with deployment.api() as api:
        api.put(f"{base}/config", json=web("two\n"))
        second = api.post(
            f"{base}/releases", json={"image": busybox, "batches": 3, "pause_mode": "after_first"}
        ).json()
    release(deployment, second["id"], "paused")
    # Paused: the first instance runs the new version, the others still the old one.
    assert [served(docker_client, name) for name in names] == ["two\n", "one\n", "one\n"]
    switched = deployment.cli("release", "mode", str(second["id"]), "never")
    assert switched.returncode == 0, switched.stderr
    assert "pause mode never" in switched.stdout
    deployment.cli("release", "resume", str(second["id"]))
    done = release(deployment, second["id"], "success")
    assert [served(docker_client, name) for name in names] == ["two\n"] * 3
    assert done["pause_mode"] == "never"

    # Closed while paused: it ends failed, for good; the instances it replaced stay.
    with deployment.api() as api:
        api.put(f"{base}/config", json=web("three\n"))
        third = api.post(
            f"{base}/releases", json={"image": busybox, "batches": 3, "pause_mode": "after_first"}
        ).json()
    release(deployment, third["id"], "paused")
    closed = deployment.cli("release", "close", str(third["id"]))
    assert closed.returncode == 0, closed.stderr
    shown = release(deployment, third["id"], "failed")
    assert (shown["closed"], shown["reason"]) == (True, "closed by admin")
    retried = deployment.cli("release", "retry", str(third["id"]))
    assert retried.returncode == 2
    assert "was closed" in retried.stderr
    assert [served(docker_client, name) for name in names] == ["three\n", "two\n", "two\n"]

    # A rolling restart: the current version and its configuration, every instance
    # replaced one by one (new containers), each step logged.
    before = {name: docker_client.containers.get(name).id for name in names}
    restarted = deployment.cli("release", "restart", app, "staging")
    assert restarted.returncode == 0, restarted.stderr
    with deployment.api() as api:
        latest = api.get(f"{base}/releases").json()["releases"][0]
    assert (latest["kind"], latest["image"]) == ("restart", busybox)
    assert latest["reason"] == f"rolling restart of release {second['id']}"
    assert latest["config_version"] == second["config_version"]
    assert latest["batches"] == [[name] for name in names]
    restart = release(deployment, latest["id"], "success")
    assert "stopped and removed the old container" in restart["instances"][0]["log"]
    assert all(docker_client.containers.get(n).id != before[n] for n in names)
    assert [served(docker_client, name) for name in names] == ["two\n"] * 3
    # The restart's batches went through the runner's queue after anything the
    # closed release could have handed out: it handed out nothing more.
    closed_after = release(deployment, third["id"], "failed")
    assert [i["status"] for i in closed_after["instances"]] == ["healthy", "waiting", "waiting"]

    logs = deployment.cli("instance", "logs", app, "staging", names[1], "--tail", "5")
    assert logs.returncode == 0, logs.stderr
    assert f"hello from {names[1]}" in logs.stdout
    missing = deployment.cli("instance", "logs", app, "staging", f"{app}-staging-9")
    assert missing.returncode == 2
    assert f"has no instance {app}-staging-9" in missing.stderr


def test_a_failed_batch_leaves_later_instances_serving_the_old_version(
    deployment: Deployment,
    deploy_runner: ShipwayProcess,
    busybox: str,
    app: str,
    docker_client: docker.DockerClient,
    repository: Repository,
) -> None:
    deployment.add_project(app, repository.bare, f"t/{app}", "s" * 20)
    base = f"/api/projects/{app}/environments/staging"
    names = [f"{app}-staging-{i}" for i in (1, 2, 3)]
    with deployment.api() as api:
        api.put(f"{base}/config", json=web("good\n"))
        order = {"image": busybox, "grouping": "all_at_once", "pause_mode": "never"}
        good = api.post(f"{base}/releases", json=order).json()
        release(deployment, good["id"], "success")
        api.put(f"{base}/config", json=web("bad\n", health="false"))
        bad = api.post(
            f"{base}/releases", json={"image": busybox, "batches": 3, "pause_mode": "never"}
        ).json()
    failed = release(deployment, bad["id"], "failed")
    assert failed["reason"] == f"{names[0]}: unhealthy"
    assert [i["status"] for i in failed["instances"]] == ["failed", "waiting", "waiting"]
    assert [served(docker_client, name) for name in names[1:]] == ["good\n", "good\n"]


def test_a_release_whose_runner_dies_mid_batch_fails_and_is_retried(
    deployment: Deployment,
    server: ShipwayProcess,
    busybox: str,
    app: str,
    docker_client: docker.DockerClient,
    repository: Repository,
    runner_name: str,
    tmp_path: Path,
) -> None:
    deployment.add_project(app, repository.bare, f"t/{app}", "s" * 20)
    base = f"/api/projects/{app}/environments/staging"
    flags = tmp_path / "flags"
    flags.mkdir()
    gated = {
        "instances": 2,
        "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
        "directories": [{"host": str(flags), "container": "/flags"}],
        "health": {"command": "test -f /flags/ok", "interval": 1, "start_period": 120},
    }
    runner = deployment.start_runner(runner_name, "staging")
    try:
        with deployment.api() as api:
            api.put(f"{base}/config", json=gated)
            order = {"image": busybox, "batches": 1, "pause_mode": "never"}
            made = api.post(f"{base}/releases", json=order).json()

            def deploying() -> bool:
                shown = api.get(f"/api/releases/{made['id']}").json()
                return any(i["status"] == "deploying" for i in shown["instances"])

            wait_until(deploying, 60, "an instance being replaced")
        assert release(deployment, made["id"], "running")["batch_runner"] == runner_name
        kill_tree(runner)  # the runner and the batch it runs, as when its host dies
        lost = release(deployment, made["id"], "failed")
        assert lost["reason"] == f"runner lost: no heartbeat from {runner_name} during batch 1"
        first = lost["instances"][0]
        assert first["status"] == "failed"
        assert first["log"].endswith(f"FAILED: {lost['reason']}")
    finally:
        runner.stop()
        remove_runner_containers(docker_client, runner_name)

    # A runner serves the environment again: retrying the failed instances finishes it.
    (flags / "ok").write_text("")
    again = deployment.start_runner(f"{runner_name}-2", "staging")
    try:
        retried = deployment.cli("release", "retry", str(made["id"]))
        assert retried.returncode == 0, retried.stderr
        done = release(deployment, made["id"], "success")
        assert done["batch_runner"] is None
        assert {i["status"] for i in done["instances"]} == {"healthy"}
    finally:
        again.stop()
        remove_runner_containers(docker_client, f"{runner_name}-2")
