"""A runner's reports while the server is away: retried for the runner's report
patience (``SHIPWAY_REPORT_PATIENCE``), delivered once the server is back, and given
up with a clear reason only after it.

The runner's own client (``runners.reporting.ServerClient``, as the runner's
settings make it) claims a real job of a real pipeline, then reports its end while
the server is killed."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from pipelines.errors import ExternalError, InvalidInput
from runners.settings import RunnerSettings
from tests.e2e.pipeline_helpers import wait_for_job
from tests.e2e.test_push_to_pipeline import SECRET, finished, pushed_pipeline
from tests.support.git import Repository
from tests.support.services import Deployment, ShipwayProcess, wait_until

PIPELINE = "image: shipway/busybox:1\njobs:\n  only: {script: echo hi}\n"


def claimed_job(
    deployment: Deployment, repository: Repository, settings: RunnerSettings
) -> tuple[int, int]:
    """A pipeline's only job, claimed as a runner would claim it: (pipeline, job)."""
    deployment.add_project("app", repository.bare, "team/app", SECRET)
    repository.commit({".shipway.yml": PIPELINE})
    pipeline_id = pushed_pipeline(repository.push())
    job_id = int(wait_for_job(deployment, pipeline_id, "only", "pending", timeout=60)["id"])
    with settings.server_client() as client:
        assert client.start(job_id, settings.name) == {}
    return pipeline_id, job_id


def runner_settings(deployment: Deployment, patience: str) -> RunnerSettings:
    return RunnerSettings.from_env(deployment.env() | {"SHIPWAY_REPORT_PATIENCE": patience})


def test_a_result_reported_while_the_server_is_down_arrives_once_it_is_back(
    deployment: Deployment, repository: Repository, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="runners.reporting")
    server = deployment.start_server()
    try:
        settings = runner_settings(deployment, "600")
        pipeline_id, job_id = claimed_job(deployment, repository, settings)
        server.kill()

        outcome: dict[str, Any] = {}

        def report() -> None:
            try:
                with settings.server_client() as client:
                    client.finish(job_id, True, 0, None)
                outcome["delivered"] = True
            except Exception as exc:  # what it was is the test's message
                outcome["error"] = exc

        reporter = threading.Thread(target=report, daemon=True)
        reporter.start()
        # The report meets the server away at least once before it is back.
        wait_until(
            lambda: not reporter.is_alive() or "retrying" in caplog.text, 30, "a retried report"
        )
        assert reporter.is_alive(), outcome
        server = deployment.start_server()
        reporter.join(60)
        assert outcome == {"delivered": True}
        pipeline = finished(deployment, pipeline_id, timeout=60)
        assert pipeline["status"] == "success", pipeline
    finally:
        server.stop()


def test_a_report_is_given_up_after_the_runners_patience(
    deployment: Deployment, repository: Repository, server: ShipwayProcess
) -> None:
    settings = runner_settings(deployment, "2")
    _, job_id = claimed_job(deployment, repository, settings)
    server.kill()
    with settings.server_client() as client, pytest.raises(ExternalError) as refused:
        client.finish(job_id, True, 0, None)
    assert "server unreachable" in str(refused.value)
    assert "gave up after 2s" in str(refused.value)


def test_a_patience_that_is_not_a_number_of_seconds_is_refused(deployment: Deployment) -> None:
    for wrong in ("soon", "-5", "0"):
        with pytest.raises(InvalidInput, match="SHIPWAY_REPORT_PATIENCE"):
            runner_settings(deployment, wrong)
