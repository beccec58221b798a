"""What unit tests decide, seen end to end from a real push (or a real GitLab hook
delivery) to a running ``shipway serve`` and ``shipway runner``: per-job rules, an
optional manual job, a job's timeout and its automatic retry, a merge request's
pipeline deploying to staging and its note in GitLab, and ``GET /metrics``.

Every server here reports to a fake GitLab (the module's ``deployment`` adds its
settings), as a server set up for GitLab does; each project is ``team/app`` there.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from tests.e2e.pipeline_helpers import (
    all_attempts,
    current_jobs,
    deliver_merge_request_hook,
    release_history,
    scraped_metrics,
    site_release_jobs,
    wait_for_job,
)
from tests.e2e.test_push_to_pipeline import SECRET, finished, job_log, pushed_pipeline
from tests.support.fake_gitlab import FakeGitLab, running
from tests.support.git import Repository
from tests.support.services import Deployment, RegistryServer, ShipwayProcess, wait_until

pytestmark = pytest.mark.docker

GITLAB_TOKEN = "gl-token-0123456789"
GITLAB_PATH = "team/app"
PUBLIC_URL = "https://shipway.example.com"


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    with running(FakeGitLab(GITLAB_TOKEN, {GITLAB_PATH})) as fake:
        yield fake


@pytest.fixture
def deployment(deployment: Deployment, gitlab: FakeGitLab) -> Deployment:
    """conftest's deployment, with the settings of a server that reports to GitLab:
    the server and runners conftest's fixtures start get them."""
    deployment.extra_env.update(
        SHIPWAY_GITLAB_URL=gitlab.url,
        SHIPWAY_GITLAB_TOKEN=GITLAB_TOKEN,
        SHIPWAY_PUBLIC_URL=PUBLIC_URL,
    )
    return deployment


@pytest.fixture
def project(deployment: Deployment, server: ShipwayProcess, repository: Repository) -> str:
    deployment.add_project("app", repository.bare, GITLAB_PATH, SECRET)
    return "app"


def at(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


def jobs_of(pipeline: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(name, stage, status) of every job the pipeline holds, in the API's order."""
    return [(job["name"], job["stage"], job["status"]) for job in pipeline["jobs"]]


RULES = """image: shipway/busybox:1
stages: [test, deploy]
jobs:
  unit:
    rules:
      - tag: "v*"
        when: never              # a release tag is not tested again
      - when: on_success         # no condition: every other pipeline
    script: echo "unit on $SHIPWAY_COMMIT_REF_NAME"
  lint:
    rules:
      - branch: "feature/*"
        when: never
      - branch: "*"
    script: echo lint
  deploy-main:
    stage: deploy
    rules:
      - branch: main
    script: echo "deploying $SHIPWAY_COMMIT_BRANCH"
"""


def test_rules_pick_each_pipelines_jobs_by_branch_and_tag(
    deployment: Deployment, project: str, runner: ShipwayProcess, repository: Repository
) -> None:
    sha = repository.commit({".shipway.yml": RULES})

    on_main = finished(deployment, pushed_pipeline(repository.push()))
    assert on_main["status"] == "success", on_main
    assert jobs_of(on_main) == [
        ("unit", "test", "success"),
        ("lint", "test", "success"),
        ("deploy-main", "deploy", "success"),
    ]
    deployed = {job["name"]: job for job in on_main["jobs"]}["deploy-main"]
    assert "deploying main\n" in job_log(deployment, deployed["id"])

    # A branch the first rule of lint leaves out (when: never) and deploy-main's
    # only rule does not match: only unit is part of the pipeline, not even skipped.
    on_feature = finished(
        deployment, pushed_pipeline(repository.push("HEAD:refs/heads/feature/login"))
    )
    assert (on_feature["status"], on_feature["sha"]) == ("success", sha)
    assert on_feature["ref"] == {"kind": "branch", "name": "feature/login"}
    assert jobs_of(on_feature) == [("unit", "test", "success")]
    assert "unit on feature/login\n" in job_log(deployment, on_feature["jobs"][0]["id"])

    # A tag: unit's never rule matches first, the branch rules match nothing.
    repository.tag("v1.0")
    on_tag = finished(deployment, pushed_pipeline(repository.push("refs/tags/v1.0")))
    assert on_tag["ref"] == {"kind": "tag", "name": "v1.0"}
    assert (on_tag["status"], on_tag["jobs"]) == ("skipped", [])
    assert on_tag["error"] == "the rules of .shipway.yml keep no job for this pipeline"

    # A job needing one the rules leave out fails the pipeline, naming both.
    repository.commit(
        {
            ".shipway.yml": RULES
            + "  smoke:\n    stage: deploy\n    needs: [deploy-main]\n    script: echo smoke\n"
        }
    )
    on_other = finished(
        deployment, pushed_pipeline(repository.push("HEAD:refs/heads/feature/needs"))
    )
    assert (on_other["status"], on_other["jobs"]) == ("failed", [])
    assert on_other["error"] == (
        ".shipway.yml: file: jobs.smoke.needs: 'deploy-main' is not in this pipeline: "
        "its rules leave it out for branch feature/needs"
    )


def test_an_optional_manual_job_leaves_the_pipeline_successful_and_can_be_played_later(
    deployment: Deployment, project: str, runner: ShipwayProcess, repository: Repository
) -> None:
    sha = repository.commit(
        {
            ".shipway.yml": """image: shipway/busybox:1
stages: [build, test, deploy]
jobs:
  build: {stage: build, script: echo built}
  preview:
    stage: test
    when: manual
    allow_failure: true
    script:
      - echo "preview played, attempt $SHIPWAY_JOB_ATTEMPT"
      - exit 4
  ship: {stage: deploy, script: echo shipped}
"""
        }
    )
    pipeline_id = pushed_pipeline(repository.push())
    first = finished(deployment, pipeline_id)
    # Nobody played preview: it blocks neither ship (a later stage) nor the pipeline.
    assert first["status"] == "success", first
    assert first["finished_at"] is not None
    assert jobs_of(first) == [
        ("build", "build", "success"),
        ("preview", "test", "manual"),
        ("ship", "deploy", "success"),
    ]
    jobs = {job["name"]: job for job in first["jobs"]}
    preview = jobs["preview"]
    assert (preview["allow_failure"], preview["played_by"], preview["started_at"]) == (
        True,
        None,
        None,
    )
    shown = deployment.cli("pipeline", str(pipeline_id))
    assert shown.returncode == 0, shown.stderr
    assert (
        shown.stdout.splitlines()[0]
        == f"pipeline {pipeline_id}: success (branch main at {sha[:12]})"
    )
    assert (
        f"  job {preview['id']} test/preview: manual [play: shipway play {preview['id']}]\n"
        in shown.stdout
    )

    played = deployment.cli("play", str(preview["id"]))
    assert played.returncode == 0, played.stderr
    assert played.stdout == f"job {preview['id']} preview played: it starts when its turn comes\n"
    ran = wait_for_job(deployment, pipeline_id, "preview", "failed")
    assert (ran["id"], ran["attempt"], ran["played_by"]) == (preview["id"], 1, "admin")
    assert (ran["exit_code"], ran["failure_kind"]) == (4, "script_failure")
    log = job_log(deployment, ran["id"])
    assert "preview played, attempt 1\n" in log
    assert log.rstrip().endswith("ERROR: Job failed: exit code 4")

    # Playing reopened the pipeline; settled again after the job ended, it is a
    # success, as preview may fail.
    found: dict[str, Any] = {}

    def settled_again() -> bool:
        found.update(finished(deployment, pipeline_id))
        return found["finished_at"] is not None and at(found["finished_at"]) >= at(
            ran["finished_at"]
        )

    wait_until(settled_again, 60, f"pipeline {pipeline_id} settled after the play", pause=0.2)
    assert found["status"] == "success", found
    assert at(found["finished_at"]) > at(first["finished_at"])
    assert jobs_of(found) == [
        ("build", "build", "success"),
        ("preview", "test", "failed"),
        ("ship", "deploy", "success"),
    ]
    assert {job["name"]: job["id"] for job in found["jobs"]}["ship"] == jobs["ship"]["id"]
    shown = deployment.cli("pipeline", str(pipeline_id))
    assert shown.returncode == 0, shown.stderr
    assert (
        f"  job {preview['id']} test/preview: failed exit code 4 [allowed to fail]\n"
        in shown.stdout
    )
    again = deployment.cli("play", str(preview["id"]))
    assert again.returncode == 2
    assert f"job {preview['id']} is failed: only a manual job that waits is played" in again.stderr


def test_a_job_past_its_timeout_is_stopped_and_retried_on_timeout(
    deployment: Deployment, project: str, runner: ShipwayProcess, repository: Repository
) -> None:
    repository.commit(
        {
            ".shipway.yml": """image: shipway/busybox:1
stages: [test, deploy]
jobs:
  soak:
    timeout: 2s
    retry: {max: 1, when: [timeout]}
    script: sleep 300
  after: {stage: deploy, script: echo never}
"""
        }
    )
    pipeline = finished(deployment, pushed_pipeline(repository.push()))
    assert pipeline["status"] == "failed", pipeline
    attempts = sorted(
        all_attempts(deployment, pipeline["id"]), key=lambda job: (job["name"], job["attempt"])
    )
    assert [(job["name"], job["attempt"], job["status"], job["retried"]) for job in attempts] == [
        ("after", 1, "skipped", False),  # once the last attempt failed
        ("soak", 1, "failed", True),
        ("soak", 2, "failed", False),  # max: 1, so no third attempt
    ]
    for job in attempts[1:]:
        assert (job["failure_kind"], job["failure_reason"]) == ("timeout", "timed out after 2s")
        assert (job["timeout_seconds"], job["exit_code"]) == (2, 137)  # killed: 128 + 9
        assert (at(job["finished_at"]) - at(job["started_at"])).total_seconds() >= 2
        # The end of the log only: on a busy machine the kill may come before the
        # script printed anything.
        log = job_log(deployment, job["id"])
        assert log.rstrip().endswith("ERROR: Job failed: timed out after 2s")
    first, second = attempts[1], attempts[2]
    assert second["id"] != first["id"]
    assert current_jobs(deployment, pipeline["id"])["soak"]["id"] == second["id"]

    shown = deployment.cli("pipeline", str(pipeline["id"]))
    assert shown.returncode == 1
    assert (
        f"  job {first['id']} test/soak: failed exit code 137 (timed out after 2s) [retried]\n"
        in shown.stdout
    )
    assert (
        f"  job {second['id']} test/soak: failed attempt 2 exit code 137 (timed out after 2s)\n"
        in shown.stdout
    )


def test_a_merge_request_pipeline_deploys_to_staging_and_notes_it_on_the_merge_request(
    deployment: Deployment,
    deploy_runner: ShipwayProcess,
    gitlab: FakeGitLab,
    busybox: str,
    app: str,
    repository: Repository,
    registry: RegistryServer,
    images_made: None,
) -> None:
    # Pushes build only main: the feature branch's push starts nothing, its merge
    # request does.
    deployment.add_project(app, repository.bare, GITLAB_PATH, SECRET, branches=["main"])
    staging_url = "https://app.staging.example.com/"
    with deployment.api() as api:
        configured = api.put(
            f"/api/projects/{app}/environments/staging/config",
            json={
                "instances": 1,
                "ports": [{"container": 8000}],
                # Generous: a start period and a long timeout only a hang exhausts.
                "health": {
                    "command": "wget -q -O /dev/null http://127.0.0.1:8000/",
                    "interval": 1,
                    "timeout": 10,
                    "start_period": 30,
                },
                "url": staging_url,
            },
        )
        assert configured.status_code == 201, configured.text
    sha = repository.commit(
        {
            ".shipway.yml": f"""
stages: [test, package, deploy]
jobs:
  unit:
    stage: test
    image: {busybox}
    rules:
      - merge_request: false     # merge requests skip it: only pushes run it
    script: echo unit
  review:
    stage: test
    image: {busybox}
    script: echo "merge request $SHIPWAY_MERGE_REQUEST_IID from $SHIPWAY_COMMIT_BRANCH"
"""
            + site_release_jobs(busybox, staging={"rules": [{"merge_request": True}]}),
            "site/index.html": "a merge request on staging\n",
        }
    )
    pushed = repository.push("HEAD:refs/heads/feature/login")
    assert (
        "shipway: refs/heads/feature/login: skipped "
        "(branch feature/login does not build (project rules))"
    ) in pushed

    delivered = deliver_merge_request_hook(
        deployment, GITLAB_PATH, SECRET, iid=7, source_branch="feature/login", sha=sha
    )
    assert delivered.status_code == 201, delivered.text
    assert (delivered.json()["status"], delivered.json()["project"]) == ("created", app)
    pipeline_id = delivered.json()["pipeline_id"]
    pipeline = finished(deployment, pipeline_id, timeout=180)
    jobs = {job["name"]: job for job in pipeline["jobs"]}
    assert pipeline["status"] == "success", job_log(deployment, jobs["staging"]["id"])
    assert (pipeline["source"], pipeline["merge_request_iid"], pipeline["triggered_by"]) == (
        "merge_request",
        7,
        "root",
    )
    assert (pipeline["ref"], pipeline["sha"]) == ({"kind": "branch", "name": "feature/login"}, sha)
    assert jobs_of(pipeline) == [
        ("review", "test", "success"),
        ("image", "package", "success"),
        ("staging", "deploy", "success"),
    ]
    assert "merge request 7 from feature/login\n" in job_log(deployment, jobs["review"]["id"])
    (image,) = pipeline["images"]
    history = release_history(deployment, app)
    assert history["current_version"] == image["reference"]
    (made,) = history["releases"]
    assert (made["status"], made["batches"]) == ("success", [[f"{app}-staging-1"]])
    assert f"Release {made['id']} succeeded" in job_log(deployment, jobs["staging"]["id"])

    wait_until(lambda: bool(gitlab.notes), 60, "the merge request note in GitLab", pause=0.2)
    wait_until(
        lambda: "success" in gitlab.states(GITLAB_PATH, sha), 60, "success in GitLab", pause=0.2
    )
    (note,) = gitlab.notes
    assert (note["project"], note["noteable_type"], note["noteable_iid"]) == (
        GITLAB_PATH,
        "MergeRequest",
        7,
    )
    assert note["body"] == (
        f"Shipway deployed {sha[:8]} to **staging**: {staging_url} "
        f"(release {made['id']}). Testers, it is ready."
    )
    reported = [s for s in gitlab.statuses if s["sha"] == sha]
    assert reported[-1]["status"] == "success"
    assert {(s["ref"], s["name"], s["target_url"]) for s in reported} == {
        ("feature/login", "shipway", f"{PUBLIC_URL}/api/pipelines/{pipeline_id}")
    }


def test_metrics_count_what_the_pipelines_did(
    deployment: Deployment,
    project: str,
    runner: ShipwayProcess,
    runner_name: str,
    repository: Repository,
    gitlab: FakeGitLab,
) -> None:
    head = "image: shipway/busybox:1\nstages: [build, test]\njobs:\n"
    repository.commit(
        {
            ".shipway.yml": head
            + "  compile: {stage: build, script: echo compiled}\n"
            + "  unit: {stage: test, script: echo tested}\n"
        }
    )
    passed = finished(deployment, pushed_pipeline(repository.push()))
    assert passed["status"] == "success", passed
    broken = repository.commit(
        {
            ".shipway.yml": head
            + "  compile: {stage: build, script: exit 3}\n"
            + "  unit: {stage: test, script: echo tested}\n"
        }
    )
    failed = finished(deployment, pushed_pipeline(repository.push()))
    assert failed["status"] == "failed", failed

    # GitLab has both final states: no report is left to fail.
    def reported() -> bool:
        return gitlab.states(GITLAB_PATH, passed["sha"])[-1:] == ["success"] and gitlab.states(
            GITLAB_PATH, broken
        )[-1:] == ["failed"]

    wait_until(reported, 60, "both final states in GitLab", pause=0.2)

    metrics = scraped_metrics(deployment)

    def family(name: str) -> dict[tuple[tuple[str, str], ...], float]:
        return {labels: value for (sample, labels), value in metrics.items() if sample == name}

    assert family("shipway_pipelines") == {
        (("project", project), ("status", "failed")): 1,
        (("project", project), ("status", "success")): 1,
    }
    assert family("shipway_jobs") == {
        (("status", "failed"),): 1,
        (("status", "skipped"),): 1,
        (("status", "success"),): 2,
    }
    assert family("shipway_releases") == {}
    assert family("shipway_runners") == {(("state", "online"),): 1, (("state", "offline"),): 0}
    with deployment.api() as api:
        runners = api.get("/api/runners").json()
    assert [(r["name"], r["online"]) for r in runners] == [(runner_name, True)]
    assert family("shipway_up") == {(("component", "database"),): 1, (("component", "redis"),): 1}
    assert family("shipway_queue_tasks") == {(("queue", "build"),): 0}
    assert family("shipway_gitlab_reports_failing") == {(): 0}

    # The histogram holds both pipelines, with the durations the API shows.
    durations = [
        (at(p["finished_at"]) - at(p["created_at"])).total_seconds() for p in (passed, failed)
    ]
    assert family("shipway_pipeline_duration_seconds_count") == {(): 2}
    assert family("shipway_pipeline_duration_seconds_sum") == {
        (): pytest.approx(sum(durations), abs=1e-3)
    }
    buckets = family("shipway_pipeline_duration_seconds_bucket")
    assert buckets[(("le", "+Inf"),)] == 2
    for (label,), count in buckets.items():
        bound = float(label[1])
        assert count == sum(1 for duration in durations if duration <= bound), label
