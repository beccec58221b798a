"""The server under its dependencies' outages: Redis and PostgreSQL, each killed
(kill -9) or stopped cleanly, for 5 s and for 60 s, while a pipeline is in the middle
(a job running, the next one waiting to be dispatched) and a release is in the middle
(a batch deploying, the next one to hand out). Then brought back on the same port.

The server process lives through it all (never restarted): ``/healthz`` says what is
down since when, the engine logs the outage once down and once back, and everything
ends honestly: success, or failed with a reason. The job and the batch are let go
during the outage, so their reports meet it too. Only the outage is timed; all else
waits on conditions, with generous bounds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from tests.conftest import remove_runner_containers
from tests.e2e.pipeline_helpers import current_jobs, wait_for_job
from tests.e2e.test_durability import let_go
from tests.e2e.test_push_to_pipeline import SECRET, pushed_pipeline
from tests.support.git import Repository
from tests.support.outages import How, PostgresOutage, RedisOutage
from tests.support.services import (
    Deployment,
    PostgresServer,
    RedisServer,
    ShipwayProcess,
    wait_until,
)

pytestmark = pytest.mark.docker

STUCK_AFTER = 30  # a runner that died with Redis makes what waits for it fail, not hang
ENDS_WITHIN = 300  # seconds after the dependency is back: generous on a busy machine
PIPELINE = (
    "image: shipway/busybox:1\nstages: [first, second]\njobs:\n"
    "  held:\n    stage: first\n"
    "    script: ['until [ -e /tmp/go ]; do sleep 0.1; done', echo let go]\n"
    "  next:\n    stage: second\n    script: echo dispatched after\n"
)


@dataclass
class Platform:
    deployment: Deployment
    redis: RedisServer
    redis_dir: Path
    postgres: PostgresServer
    server: ShipwayProcess | None
    runners: list[ShipwayProcess]
    flags: Path  # the release's health check passes once flags/ok exists


@pytest.fixture
def platform(
    tmp_path: Path, docker_client: docker.DockerClient, busybox: str, runner_name: str
) -> Iterator[Platform]:
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    redis = RedisServer.start(redis_dir)
    postgres = PostgresServer.start()
    deployment = Deployment(root=tmp_path / "deployment", redis_url=redis.url)
    deployment.root.mkdir()
    deployment.extra_env.update(
        SHIPWAY_DATABASE_URL=postgres.url, SHIPWAY_STUCK_AFTER=str(STUCK_AFTER)
    )
    flags = tmp_path / "flags"
    flags.mkdir()
    started = Platform(deployment, redis, redis_dir, postgres, None, [], flags)
    try:
        started.server = deployment.start_server()
        # One runner each: an RQ worker runs one task at a time.
        started.runners.append(deployment.start_runner(runner_name, "build"))
        started.runners.append(deployment.start_runner(f"{runner_name}-deploy", "staging"))
        yield started
    finally:
        for process in started.runners:
            process.stop()
        if started.server is not None:
            started.server.stop()
        for name in (runner_name, f"{runner_name}-deploy"):
            remove_runner_containers(docker_client, name)
        started.redis.stop()  # the one running now: an outage starts a new one
        postgres.stop()


def release_config(flags: Path) -> dict[str, Any]:
    return {
        "instances": 2,
        "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
        "directories": [{"host": str(flags), "container": "/flags"}],
        # Healthy once the test makes the flag; the start period keeps it from
        # turning unhealthy however long that takes.
        "health": {
            "command": "test -f /flags/ok",
            "interval": 1,
            "timeout": 5,
            "retries": 3,
            "start_period": 600,
        },
    }


def get(deployment: Deployment, path: str) -> Any:
    with deployment.api() as api:
        return api.get(path).json()


def health(deployment: Deployment) -> tuple[int, dict[str, Any]]:
    try:
        answer = httpx.get(f"{deployment.url}/healthz", timeout=15)
    except httpx.TransportError as exc:
        raise AssertionError(f"the server did not answer /healthz: {exc}") from exc
    return answer.status_code, answer.json()


def ended_honestly(found: dict[str, Any], what: str) -> None:
    """Success, or failed with a reason: never a failure without one."""
    if found["status"] == "success":
        return
    assert found["status"] == "failed", f"{what}: {found}"
    reason = found.get("failure_reason") or found.get("reason")
    assert reason, f"{what} failed without a reason: {found}"


# Each dependency is killed outright for a minute and stopped cleanly for a moment:
# every way and every length is covered for both, in half the suite's time of the
# full cross (a minute's outage costs the suite a minute and a half).
@pytest.mark.parametrize(("how", "seconds"), [("kill", 60), ("stop", 5)])
@pytest.mark.parametrize("dependency", ["redis", "postgresql"])
def test_the_server_waits_out_an_outage_in_the_middle_of_a_pipeline_and_a_release(
    platform: Platform,
    repository: Repository,
    app: str,
    docker_client: docker.DockerClient,
    dependency: str,
    how: How,
    seconds: int,
) -> None:
    deployment = platform.deployment
    deployment.add_project(app, repository.bare, f"t/{app}", SECRET)
    base = f"/api/projects/{app}/environments/staging"
    with deployment.api() as api:
        assert api.put(f"{base}/config", json=release_config(platform.flags)).status_code < 300
    repository.commit({".shipway.yml": PIPELINE})
    pipeline_id = pushed_pipeline(repository.push())
    held = wait_for_job(deployment, pipeline_id, "held", "running", timeout=120)
    with deployment.api() as api:
        order = {"image": "shipway/busybox:1", "batches": 2, "pause_mode": "never"}
        created = api.post(f"{base}/releases", json=order)
        assert created.status_code == 201, created.text
    release_id = created.json()["id"]
    wait_until(
        lambda: get(deployment, f"/api/releases/{release_id}")["batch_runner"] is not None,
        120,
        "the first batch deploying",
        pause=0.2,
    )

    checked = "database" if dependency == "postgresql" else "redis"  # as /healthz names it
    outage: RedisOutage | PostgresOutage
    if dependency == "redis":
        outage = RedisOutage(platform.redis, platform.redis_dir)
    else:
        outage = PostgresOutage(platform.postgres)
    began = time.monotonic()
    outage.begin(how)
    try:
        wait_until(lambda: dependency_down(deployment, checked), 30, "/healthz naming it")
        status, body = health(deployment)
        assert status == 503
        assert body["status"] == "degraded"
        assert body["checks"][checked] is False
        assert body["down"][checked]["since"]
        # The work in flight ends while the dependency is away: its reports meet it.
        let_go(docker_client, held["id"])
        (platform.flags / "ok").write_text("")
        if dependency == "redis" and seconds >= 60:
            # What cannot be queued says so, with the outage's start.
            away = f"not queued yet: Redis unreachable since {body['down']['redis']['since'][:19]}Z"
            says_why(deployment, f"/api/pipelines/{pipeline_id}", away)
            says_why(deployment, f"/api/releases/{release_id}", away)
        time.sleep(max(0.0, seconds - (time.monotonic() - began)))  # the outage itself
    finally:
        outage.end()
        if isinstance(outage, RedisOutage):
            platform.redis = outage.server

    def finished() -> bool:
        pipeline = get(deployment, f"/api/pipelines/{pipeline_id}")
        release = get(deployment, f"/api/releases/{release_id}")
        return pipeline["status"] in ("success", "failed") and release["status"] in (
            "success",
            "failed",
        )

    wait_until(lambda: health(deployment)[0] == 200, 60, "/healthz ok again", pause=0.5)
    wait_until(finished, ENDS_WITHIN, "the pipeline and the release ending", pause=0.5)
    server = platform.server
    assert server is not None
    assert server.process.poll() is None, "the server died"
    pipeline = get(deployment, f"/api/pipelines/{pipeline_id}")
    assert pipeline["status"] in ("success", "failed"), pipeline
    for job in current_jobs(deployment, pipeline_id).values():
        ended_honestly(job, f"job {job['name']}")  # a failed pipeline's reasons are its jobs'

    release = get(deployment, f"/api/releases/{release_id}")
    ended_honestly(release, f"release {release_id}")
    runners_alive = all(runner.process.poll() is None for runner in platform.runners)
    if dependency == "postgresql" or runners_alive:
        # Nothing died: nothing has a reason to fail.
        assert pipeline["status"] == "success", pipeline
        assert release["status"] == "success", release
    log = server.log()
    assert log.count(f"{checked} unreachable: ") == 1, log
    assert log.count(f"{checked} reachable again after ") == 1, log
    assert "engine pass failed" not in log
    reasons = [job["failure_reason"] for job in pipeline["jobs"] if job["failure_reason"]]
    print(
        f"{dependency} {how} {seconds}s: pipeline {pipeline['status']} {reasons}, "
        f"release {release['status']} ({release['reason']}), runners alive: {runners_alive}, "
        f"ended {time.monotonic() - began:.0f}s after the outage began"
    )


def says_why(deployment: Deployment, path: str, text: str) -> None:
    found: dict[str, Any] = {}

    def waiting() -> bool:
        found.update(get(deployment, path))
        return text in (found.get("waiting") or "")

    try:
        wait_until(waiting, 30, f"{path} saying why it waits", pause=0.2)
    except TimeoutError as exc:
        raise AssertionError(f"{path} does not say {text!r}: {found}") from exc


def dependency_down(deployment: Deployment, checked: str) -> bool:
    status, body = health(deployment)
    return status == 503 and checked in body.get("down", {})
