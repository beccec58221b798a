"""A server killed (kill -9) while a job runs loses neither the job's log nor its result."""

from __future__ import annotations

import pytest

from tests.e2e.pipeline_helpers import Processes
from tests.e2e.test_push_to_pipeline import (
    SECRET,
    finished,
    job_log,
    pipeline_file,
    pushed_pipeline,
)
from tests.support.git import Repository
from tests.support.services import Deployment, wait_until

pytestmark = pytest.mark.docker


def test_a_job_outlives_a_killed_server(
    deployment: Deployment, processes: Processes, runner_name: str, repository: Repository
) -> None:
    server = processes.server()
    processes.runner(runner_name)
    deployment.add_project("app", repository.bare, "t/app", SECRET)
    repository.commit(
        {
            ".shipway.yml": pipeline_file(
                ("slow", "test", ["for i in $(seq 1 12); do echo tick $i; sleep 0.25; done"])
            )
        }
    )
    pipeline_id = pushed_pipeline(repository.push())
    with deployment.api() as api:

        def ticking() -> bool:
            jobs = api.get(f"/api/pipelines/{pipeline_id}").json()["jobs"]
            return bool(jobs) and "tick 2" in api.get(f"/api/jobs/{jobs[0]['id']}/log").text

        wait_until(ticking, 30, "the job printing")
    server.kill()
    processes.server()
    pipeline = finished(deployment, pipeline_id)
    assert pipeline["status"] == "success"
    ticks = [
        line
        for line in job_log(deployment, pipeline["jobs"][0]["id"]).splitlines()
        if line.startswith("tick")
    ]
    assert ticks == [f"tick {i}" for i in range(1, 13)]
