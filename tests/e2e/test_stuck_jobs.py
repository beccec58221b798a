"""Stuck jobs and release batches, like GitLab's: what waits for a runner says so in
the API and the CLI, computed from the runners' heartbeats, and fails with that
reason after the server's stuck time (shortened here to a few seconds)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import redis
from rq import Queue

from pipelines.waiting import stamp
from tests.e2e.pipeline_helpers import current_jobs, wait_for_job
from tests.e2e.test_push_to_pipeline import SECRET, finished, job_log, pushed_pipeline
from tests.support.git import Repository
from tests.support.services import Deployment, ShipwayProcess, wait_until
from tests.support.test_run import unique_name

STUCK_AFTER = 8  # seconds: long enough to read the waiting reason first


@pytest.fixture
def stuck_server(deployment: Deployment) -> Iterator[ShipwayProcess]:
    deployment.extra_env["SHIPWAY_STUCK_AFTER"] = str(STUCK_AFTER)
    process = deployment.start_server()
    yield process
    process.stop()


def job_file(queue: str) -> str:
    return f"image: shipway/busybox:1\njobs:\n  unit:\n    queue: {queue}\n    script: echo ran\n"


def get(deployment: Deployment, path: str) -> Any:
    with deployment.api() as api:
        answer = api.get(path)
        assert answer.status_code == 200, answer.text
        return answer.json()


def test_a_job_no_runner_serves_says_so_then_fails_as_stuck(
    deployment: Deployment, stuck_server: ShipwayProcess, repository: Repository
) -> None:
    deployment.add_project("app", repository.bare, "t/app", SECRET)
    queue = unique_name("-queue-")
    repository.commit({".shipway.yml": job_file(queue)})
    pipeline_id = pushed_pipeline(repository.push())
    job = wait_for_job(deployment, pipeline_id, "unit", "pending")
    waiting = f"waiting for a runner serving queue {queue}; no runner has ever served queue {queue}"
    shown = get(deployment, f"/api/jobs/{job['id']}")
    assert (shown["status"], shown["waiting"]) == ("pending", waiting)
    pipeline = get(deployment, f"/api/pipelines/{pipeline_id}")
    assert pipeline["status"] == "pending"
    assert pipeline["waiting"] == f"job unit: {waiting}"
    described = deployment.cli("pipeline", str(pipeline_id))
    assert f"waiting: job unit: {waiting}" in described.stdout, described.stdout

    ended = finished(deployment, pipeline_id, timeout=STUCK_AFTER + 60)
    assert (ended["status"], ended["waiting"]) == ("failed", None)
    (stuck,) = ended["jobs"]
    reason = f"stuck for {STUCK_AFTER}s: {waiting}"
    assert (stuck["status"], stuck["failure_kind"], stuck["failure_reason"]) == (
        "failed",
        "stuck",
        reason,
    )
    assert (stuck["waiting"], stuck["started_at"]) == (None, None)
    assert f"ERROR: {reason}" in job_log(deployment, stuck["id"])
    described = deployment.cli("pipeline", str(pipeline_id))
    assert f"({reason})" in described.stdout, described.stdout


def test_a_runner_gone_offline_is_named_with_its_last_heartbeat_and_a_retry_runs(
    deployment: Deployment,
    stuck_server: ShipwayProcess,
    repository: Repository,
    runner_name: str,
    busybox: str,
) -> None:
    deployment.add_project("app", repository.bare, "t/app", SECRET)
    queue = unique_name("-queue-")
    runner = deployment.start_runner(runner_name, queue)
    try:

        def listed() -> dict[str, Any]:
            found: list[dict[str, Any]] = get(deployment, "/api/runners")
            return next((r for r in found if r["name"] == runner_name), {})

        wait_until(lambda: listed().get("online") is True, 60, "the runner online")
        runner.stop()
        wait_until(lambda: listed()["online"] is False, 60, "the runner offline", pause=0.5)
        last_seen = stamp(datetime.fromisoformat(listed()["last_seen"]))
        repository.commit({".shipway.yml": job_file(queue)})
        pipeline_id = pushed_pipeline(repository.push())
        job = wait_for_job(deployment, pipeline_id, "unit", "pending")
        waiting = f"waiting for a runner serving queue {queue}; none online since {last_seen}"
        assert get(deployment, f"/api/jobs/{job['id']}")["waiting"] == waiting
        ended = finished(deployment, pipeline_id, timeout=STUCK_AFTER + 60)
        (stuck,) = ended["jobs"]
        assert (stuck["failure_kind"], stuck["failure_reason"]) == (
            "stuck",
            f"stuck for {STUCK_AFTER}s: {waiting}",
        )
        # A runner serves the queue again: a retry by hand runs.
        runner = deployment.start_runner(runner_name, queue)
        retried = deployment.cli("retry", str(stuck["id"]))
        assert retried.returncode == 0, retried.stderr
        again: dict[str, Any] = {}

        def retry_ended() -> bool:
            again.update(current_jobs(deployment, pipeline_id)["unit"])
            return again["attempt"] == 2 and again["status"] in ("success", "failed")

        wait_until(retry_ended, 90, "the retry ending", pause=0.2)
        assert again["status"] == "success", again
    finally:
        runner.stop()


def test_a_release_batch_no_runner_serves_says_so_then_fails_as_stuck(
    deployment: Deployment, stuck_server: ShipwayProcess, repository: Repository
) -> None:
    app = unique_name("rel")
    environment = "nowhere"
    deployment.add_project(app, repository.bare, f"t/{app}", SECRET)
    base = f"/api/projects/{app}/environments/{environment}"
    with deployment.api() as api:
        configured = api.put(f"{base}/config", json={"instances": 1})
        assert configured.status_code in (200, 201), configured.text
        created = api.post(f"{base}/releases", json={"image": "shipway/busybox:1", "batches": 1})
        assert created.status_code == 201, created.text
    release_id = created.json()["id"]
    waiting = (
        f"batch 1 of 1 waiting for a runner serving queue {environment}; "
        f"no runner has ever served queue {environment}"
    )
    found: dict[str, Any] = {}

    def says(status: str, field: str, text: str) -> bool:
        found.update(get(deployment, f"/api/releases/{release_id}"))
        return bool(found["status"] == status and found[field] == text)

    wait_until(lambda: says("running", "waiting", waiting), 30, "the release waiting", pause=0.2)
    shown = deployment.cli("release", "show", str(release_id))
    assert waiting in shown.stdout, shown.stdout
    # The batch, for a runner to take (queued just after it is marked handed out).
    wait_until(lambda: queued_tasks(deployment, environment) == 1, 30, "the batch queued")
    reason = f"stuck for {STUCK_AFTER}s: {waiting}"
    wait_until(lambda: says("failed", "reason", reason), STUCK_AFTER + 60, "the release stuck")
    assert found["waiting"] is None
    # Its task leaves the queue (just after the release fails): a runner serving the
    # queue later finds nothing.
    wait_until(lambda: queued_tasks(deployment, environment) == 0, 30, "the batch dropped")


def queued_tasks(deployment: Deployment, queue: str) -> int:
    connection = redis.Redis.from_url(deployment.redis_url)
    try:
        return int(Queue(queue, connection=connection).count)
    finally:
        connection.close()
