"""A push's pipeline is reported on its commit in GitLab (T5) by the running server:
(pending), running, then success or failed, through python-gitlab to a fake of
GitLab's commit status API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.test_push_to_pipeline import SECRET, finished, pipeline_file, pushed_pipeline
from tests.support.fake_gitlab import FakeGitLab, running
from tests.support.git import Repository
from tests.support.services import Deployment, ShipwayProcess, wait_until

pytestmark = pytest.mark.docker


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    with running(FakeGitLab("gl-token-0123456789", {"team/app"})) as fake:
        yield fake


@pytest.fixture
def reporting_server(deployment: Deployment, gitlab: FakeGitLab) -> Iterator[ShipwayProcess]:
    deployment.extra_env.update(
        SHIPWAY_GITLAB_URL=gitlab.url,
        SHIPWAY_GITLAB_TOKEN="gl-token-0123456789",
        SHIPWAY_PUBLIC_URL="https://shipway.example.com",
    )
    process = deployment.start_server()
    yield process
    process.stop()


def test_a_pushed_commit_shows_its_pipeline_in_gitlab(
    deployment: Deployment,
    reporting_server: ShipwayProcess,
    gitlab: FakeGitLab,
    repository: Repository,
    runner_name: str,
    busybox: str,
) -> None:
    deployment.add_project("app", repository.bare, "team/app", SECRET)
    runner = deployment.start_runner(runner_name)
    try:
        good = repository.commit({".shipway.yml": pipeline_file(("unit", "test", ["sleep 1"]))})
        pipeline_id = pushed_pipeline(repository.push())
        assert finished(deployment, pipeline_id)["status"] == "success"
        wait_until(lambda: "success" in gitlab.states("team/app", good), 60, "success in GitLab")
        # The reporter sends the state of the moment: "pending" may be over by then.
        assert gitlab.states("team/app", good) in (
            ["pending", "running", "success"],
            ["running", "success"],
        )
        last = gitlab.statuses[-1]
        assert last["target_url"] == f"https://shipway.example.com/api/pipelines/{pipeline_id}"
        assert (last["ref"], last["name"]) == ("main", "shipway")

        bad = repository.commit({".shipway.yml": pipeline_file(("unit", "test", ["exit 3"]))})
        finished(deployment, pushed_pipeline(repository.push()))
        wait_until(lambda: "failed" in gitlab.states("team/app", bad), 60, "failed in GitLab")
        assert gitlab.states("team/app", bad)[-1] == "failed"
    finally:
        runner.stop()
