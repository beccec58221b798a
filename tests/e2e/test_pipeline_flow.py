"""The pipeline file's flow on real runners: needs, when, allow_failure, manual jobs,
retries by hand and automatic, cancel of a running container, secrets masked."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import docker
import pytest
import redis

from tests.conftest import remove_runner_containers
from tests.e2e.pipeline_helpers import current_jobs, wait_for_job, wait_for_pipeline
from tests.e2e.test_push_to_pipeline import SECRET, finished, job_log, pushed_pipeline
from tests.support.git import Repository
from tests.support.services import Deployment, ShipwayProcess, wait_until
from tests.support.test_run import job_containers

pytestmark = pytest.mark.docker

HEAD = "image: shipway/busybox:1\nstages: [build, test, deploy]\njobs:\n"


@pytest.fixture
def project(deployment: Deployment, server: ShipwayProcess, repository: Repository) -> str:
    deployment.add_project("app", repository.bare, "team/app", SECRET)
    return "app"


@pytest.fixture
def second_runner(
    deployment: Deployment,
    runner: ShipwayProcess,
    runner_name: str,
    docker_client: docker.DockerClient,
) -> Iterator[ShipwayProcess]:
    name = f"{runner_name}-2"
    process = deployment.start_runner(name)
    yield process
    process.stop()
    remove_runner_containers(docker_client, name)


def test_needs_when_and_allowed_failures(
    deployment: Deployment, project: str, second_runner: ShipwayProcess, repository: Repository
) -> None:
    repository.commit(
        {
            ".shipway.yml": HEAD
            + """
  slow:
    stage: build
    script: sleep 2
  early:
    stage: test
    needs: []
    script: echo early
  after_slow:
    stage: test
    needs: [slow]
    script: echo after
  flaky:
    stage: test
    needs: []
    allow_failure: true
    script: exit 3
  cleanup:
    stage: deploy
    when: on_failure
    script: echo cleaning
  report:
    stage: deploy
    when: always
    script: echo reporting
"""
        }
    )
    pipeline = finished(deployment, pushed_pipeline(repository.push()))
    jobs = {job["name"]: job for job in pipeline["jobs"]}
    assert pipeline["status"] == "success", pipeline
    assert jobs["early"]["started_at"] < jobs["slow"]["finished_at"]  # needs: [] skips the barrier
    assert jobs["after_slow"]["started_at"] >= jobs["slow"]["finished_at"]
    assert (jobs["flaky"]["status"], jobs["flaky"]["exit_code"]) == ("failed", 3)
    assert jobs["flaky"]["failure_kind"] == "script_failure"
    assert jobs["cleanup"]["status"] == "skipped"  # nothing failed that counts
    assert jobs["report"]["status"] == "success"


def test_a_manual_job_waits_until_played(
    deployment: Deployment, project: str, runner: ShipwayProcess, repository: Repository
) -> None:
    repository.commit(
        {
            ".shipway.yml": HEAD
            + """
  build: {stage: build, script: echo built}
  release:
    stage: deploy
    when: manual
    allow_failure: false
    script: echo "released by $SHIPWAY_JOB_NAME"
"""
        }
    )
    pipeline_id = pushed_pipeline(repository.push())
    release = wait_for_job(deployment, pipeline_id, "release", "manual")
    blocked = wait_for_pipeline(deployment, pipeline_id, "manual")
    assert blocked["finished_at"] is None
    # Nobody plays it: it keeps waiting while the engine moves a later pipeline on.
    repository.commit({"README": "later\n"})
    later = pushed_pipeline(repository.push())
    moved_on = wait_for_pipeline(deployment, later, "manual")["jobs"]
    assert {job["name"]: job["status"] for job in moved_on} == {
        "build": "success",
        "release": "manual",
    }
    assert current_jobs(deployment, pipeline_id)["release"]["status"] == "manual"
    shown = deployment.cli("pipeline", str(pipeline_id))
    assert f"[play: shipway play {release['id']}]" in shown.stdout

    played = deployment.cli("play", str(release["id"]))
    assert played.returncode == 0, played.stderr
    assert "played" in played.stdout
    pipeline = finished(deployment, pipeline_id)
    assert pipeline["status"] == "success"
    done = current_jobs(deployment, pipeline_id)["release"]
    assert (done["status"], done["played_by"]) == ("success", "admin")
    assert "released by release" in job_log(deployment, done["id"])
    again = deployment.cli("play", str(release["id"]))
    assert again.returncode == 2
    assert "only a manual job that waits is played" in again.stderr


def test_retry_by_hand_keeps_the_old_log_and_reruns_what_was_skipped(
    deployment: Deployment, project: str, runner: ShipwayProcess, repository: Repository
) -> None:
    repository.commit(
        {
            ".shipway.yml": HEAD
            + """
  unit:
    stage: test
    script:
      - echo "attempt $SHIPWAY_JOB_ATTEMPT"
      - test "$SHIPWAY_JOB_ATTEMPT" -ge 2
  ship: {stage: deploy, script: echo shipped}
"""
        }
    )
    pipeline = finished(deployment, pushed_pipeline(repository.push()))
    assert pipeline["status"] == "failed"
    first = {job["name"]: job for job in pipeline["jobs"]}
    assert first["ship"]["status"] == "skipped"

    retried = deployment.cli("retry", str(first["unit"]["id"]))
    assert retried.returncode == 0, retried.stderr
    assert "(attempt 2)" in retried.stdout
    pipeline = finished(deployment, pipeline["id"])
    assert pipeline["status"] == "success"
    jobs = current_jobs(deployment, pipeline["id"])
    assert (jobs["unit"]["attempt"], jobs["unit"]["status"]) == (2, "success")
    assert jobs["ship"]["status"] == "success"
    assert "attempt 1" in job_log(deployment, first["unit"]["id"])  # the old log stays
    assert "attempt 2" in job_log(deployment, jobs["unit"]["id"])
    refused = deployment.cli("retry", str(jobs["unit"]["id"]))
    assert refused.returncode == 2
    assert "only a failed or canceled job is retried" in refused.stderr


def test_automatic_retries_and_retrying_a_pipeline(
    deployment: Deployment, project: str, runner: ShipwayProcess, repository: Repository
) -> None:
    repository.commit(
        {
            ".shipway.yml": HEAD
            + """
  flaky:
    retry: {max: 2, when: [script_failure]}
    script: test "$SHIPWAY_JOB_ATTEMPT" -ge 3
  broken:
    retry: {max: 2, when: [timeout]}
    script: exit 1
"""
        }
    )
    pipeline = finished(deployment, pushed_pipeline(repository.push()))
    with deployment.api() as api:
        every = api.get(f"/api/pipelines/{pipeline['id']}/jobs").json()
    attempts = [(job["name"], job["attempt"], job["status"]) for job in every]
    assert sorted(attempts) == [
        ("broken", 1, "failed"),  # a script failure is not what it retries on
        ("flaky", 1, "failed"),
        ("flaky", 2, "failed"),
        ("flaky", 3, "success"),
    ]
    assert pipeline["status"] == "failed"
    retried = deployment.cli("retry", "--pipeline", str(pipeline["id"]))
    assert retried.returncode == 0, retried.stderr
    again = finished(deployment, pipeline["id"])
    assert current_jobs(deployment, pipeline["id"])["broken"]["attempt"] == 2
    assert again["status"] == "failed"


def test_cancel_stops_a_running_container(
    deployment: Deployment,
    project: str,
    runner: ShipwayProcess,
    repository: Repository,
    docker_client: docker.DockerClient,
) -> None:
    repository.commit(
        {
            ".shipway.yml": HEAD
            + """
  quiet: {stage: build, script: sleep 300}
  later: {stage: test, script: echo never}
"""
        }
    )
    pipeline_id = pushed_pipeline(repository.push())
    job = wait_for_job(deployment, pipeline_id, "quiet", "running")
    label = job_containers(job["id"])
    wait_until(lambda: bool(docker_client.containers.list(filters=label)), 60, "the container")
    canceled = deployment.cli("cancel", str(job["id"]))
    assert canceled.returncode == 0, canceled.stderr
    assert f"job {job['id']}: canceled" in canceled.stdout
    # How soon is bench/reaction_times.py's figure; here that it goes without the
    # 300 s script ending.
    wait_until(lambda: not docker_client.containers.list(filters=label), 60, "the container gone")
    pipeline = finished(deployment, pipeline_id)
    jobs = {job["name"]: job for job in pipeline["jobs"]}
    assert pipeline["status"] == "canceled"
    assert jobs["quiet"]["failure_reason"] == "canceled by admin"
    assert jobs["later"]["status"] == "skipped"

    repository.commit({"README": "again\n"})
    second = pushed_pipeline(repository.push())
    wait_for_job(deployment, second, "quiet", "running")
    whole = deployment.cli("cancel", "--pipeline", str(second))
    assert whole.returncode == 0, whole.stderr
    pipeline = finished(deployment, second)
    assert [job["status"] for job in pipeline["jobs"]] == ["canceled", "canceled"]
    assert pipeline["error"] == "canceled by admin"
    refused = deployment.cli("cancel", "--pipeline", str(second))
    assert refused.returncode == 2
    assert "nothing to cancel" in refused.stderr


TOKEN = "swordfish-0123456789"


def test_secret_values_never_reach_a_log(
    deployment: Deployment, project: str, runner: ShipwayProcess, repository: Repository
) -> None:
    stored = deployment.cli("secret", "set", "app", "DEPLOY_TOKEN", "--environment", "staging")
    assert stored.returncode == 2  # no value on stdin: too short, refused
    assert "at least 8 characters" in stored.stderr
    stored = deployment.cli_with_input(
        f"{TOKEN}\n", "secret", "set", "app", "DEPLOY_TOKEN", "--environment", "staging"
    )
    assert stored.returncode == 0, stored.stderr
    listing = deployment.cli("secret", "list", "app")
    assert "DEPLOY_TOKEN" in listing.stdout
    assert TOKEN not in listing.stdout
    repository.commit(
        {
            ".shipway.yml": HEAD
            + """
  deploy:
    stage: deploy
    environment: staging
    secrets: [DEPLOY_TOKEN]
    script:
      - test "${#DEPLOY_TOKEN}" -eq 20
      - echo "whole $DEPLOY_TOKEN"
      - >-
        printf 'split '; printf '%s' "$DEPLOY_TOKEN" | cut -c1-9 | tr -d '\\n';
        sleep 0.6; printf '%s' "$DEPLOY_TOKEN" | cut -c10-
  elsewhere:
    stage: deploy
    secrets: [DEPLOY_TOKEN]
    script: echo "$DEPLOY_TOKEN"
"""
        }
    )
    pipeline_id = pushed_pipeline(repository.push())
    deploy = wait_for_job(deployment, pipeline_id, "deploy", "running")
    streamed = deployment.cli("log", "-f", str(deploy["id"]))
    pipeline = finished(deployment, pipeline_id)
    jobs = {job["name"]: job for job in pipeline["jobs"]}
    assert jobs["deploy"]["status"] == "success"
    log = job_log(deployment, jobs["deploy"]["id"])
    assert "whole [MASKED]" in log
    assert "split [MASKED]" in log
    for text in (log, streamed.stdout):
        assert TOKEN not in text
        assert TOKEN[:9] not in text
        assert TOKEN[9:] not in text
    # Without an environment only a value for every environment ("*") applies.
    assert jobs["elsewhere"]["failure_kind"] == "config_error"
    assert "DEPLOY_TOKEN has no value for every environment" in jobs["elsewhere"]["failure_reason"]
    # Sealed at rest, and never in the queue: only the runner that starts the job
    # receives the value.
    for path in (deployment.root / "server").glob("shipway.db*"):
        assert TOKEN.encode() not in path.read_bytes(), path
    queued = redis.Redis.from_url(deployment.redis_url)
    try:
        for key in queued.scan_iter("rq:*"):
            dumped = json.dumps(
                [str(value) for value in queued.hgetall(key).values()]
                if queued.type(key) == b"hash"
                else []
            )
            assert TOKEN not in dumped, key
    finally:
        queued.close()


# Quotes, $, a backquote, a backslash, a newline and runs of spaces: all must arrive.
TRICKY = 'it\'s "quoted" $HOME `uname` \\ back\nsecond  line  with  spaces '


def test_secret_values_reach_the_job_but_never_its_containers_configuration(
    deployment: Deployment,
    project: str,
    runner: ShipwayProcess,
    repository: Repository,
    docker_client: docker.DockerClient,
) -> None:
    stored = deployment.cli_with_input(TRICKY, "secret", "set", "app", "TRICKY")
    assert stored.returncode == 0, stored.stderr
    repository.commit(
        {
            ".shipway.yml": HEAD
            + """
  reads:
    secrets: [TRICKY]
    script:
      - printf '%s' "$TRICKY" | sha256sum
      - test ! -e /shipway/secrets.sh
      - 'until [ -e /tmp/go ]; do sleep 0.1; done'
"""
        }
    )
    pipeline_id = pushed_pipeline(repository.push())
    job = wait_for_job(deployment, pipeline_id, "reads", "running")
    filters = job_containers(job["id"])
    wait_until(lambda: bool(docker_client.containers.list(filters=filters)), 60, "its container")
    (container,) = docker_client.containers.list(filters=filters)
    # While the job runs: neither its configuration nor its files hold the value.
    container.reload()  # attrs: what docker inspect shows
    inspected = json.dumps(container.attrs)
    for piece in (TRICKY, *TRICKY.splitlines(), json.dumps(TRICKY)[1:-1]):
        assert piece not in inspected
    assert not any(entry.startswith("TRICKY=") for entry in container.attrs["Config"]["Env"])
    assert container.exec_run(["test", "-e", "/shipway/secrets.sh"]).exit_code == 1
    assert container.exec_run(["touch", "/tmp/go"]).exit_code == 0
    pipeline = finished(deployment, pipeline_id)
    assert pipeline["status"] == "success", pipeline
    log = job_log(deployment, job["id"])
    assert hashlib.sha256(TRICKY.encode()).hexdigest() in log  # read whole, byte for byte
    assert "second  line" not in log
