"""From ``git push`` to a finished pipeline: real git hook, server, Redis, runner, Docker."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.git import Repository
from tests.support.services import Deployment, ShipwayProcess, wait_until

pytestmark = pytest.mark.docker

SECRET = "e2e-webhook-secret-0123456789"


def pipeline_file(*jobs: tuple[str, str, list[str]], image: str = "shipway/busybox:1") -> str:
    lines = [f"image: {image}", "stages: [build, test]", "jobs:"]
    for name, stage, script in jobs:
        lines += [f"  {name}:", f"    stage: {stage}", "    script:"]
        lines += [f"      - {json.dumps(command)}" for command in script]
    return "\n".join(lines) + "\n"


@pytest.fixture
def project(deployment: Deployment, server: ShipwayProcess, repository: Repository) -> str:
    deployment.add_project("app", repository.bare, "team/app", SECRET)
    return "app"


def pushed_pipeline(push_output: str) -> int:
    match = re.search(r"shipway: \S+: created pipeline (\d+)", push_output)
    assert match, f"the hook reported no pipeline:\n{push_output}"
    return int(match.group(1))


def finished(deployment: Deployment, pipeline_id: int, timeout: float = 90) -> dict[str, Any]:
    result: dict[str, Any] = {}
    with deployment.api() as api:

        def done() -> bool:
            result.update(api.get(f"/api/pipelines/{pipeline_id}").json())
            return result["status"] in ("success", "failed", "canceled", "skipped")

        wait_until(done, timeout, f"pipeline {pipeline_id} finishing", pause=0.1)
    return result


def job_log(deployment: Deployment, job_id: int) -> str:
    with deployment.api() as api:
        return api.get(f"/api/jobs/{job_id}/log").text


def test_a_push_runs_its_jobs_in_containers_stage_by_stage(
    deployment: Deployment, project: str, runner: ShipwayProcess, repository: Repository
) -> None:
    sha = repository.commit(
        {
            ".shipway.yml": pipeline_file(
                ("compile", "build", ["echo compiled > out.txt", "cat out.txt"]),
                ("unit", "test", ["cat README", 'echo "testing $SHIPWAY_COMMIT_SHA"']),
            ),
            "README": "hello from the repository\n",
        }
    )
    pipeline = finished(deployment, pushed_pipeline(repository.push()))
    assert pipeline["status"] == "success", pipeline
    assert pipeline["sha"] == sha
    compile_job, unit = pipeline["jobs"]
    assert (compile_job["name"], compile_job["status"], compile_job["exit_code"]) == (
        "compile",
        "success",
        0,
    )
    assert unit["started_at"] >= compile_job["finished_at"]  # the stage barrier
    log = job_log(deployment, unit["id"])
    assert "hello from the repository" in log
    assert f"testing {sha}" in log
    assert log.rstrip().endswith("Job succeeded")

    listing = deployment.cli("pipelines", "--project", "app")
    assert listing.returncode == 0
    assert re.search(
        rf"^{pipeline['id']}\s+success\s+branch main\s+{sha[:12]}\s+push", listing.stdout, re.M
    )
    shown = deployment.cli("log", str(compile_job["id"]))
    assert "$ cat out.txt\ncompiled\n" in shown.stdout


def test_a_failing_script_fails_the_pipeline_with_its_exit_code_and_log(
    deployment: Deployment, project: str, runner: ShipwayProcess, repository: Repository
) -> None:
    repository.commit(
        {
            ".shipway.yml": pipeline_file(
                ("compile", "build", ["echo compiling", "echo 'error: it broke' >&2; exit 7"]),
                ("unit", "test", ["echo unreachable"]),
            )
        }
    )
    pipeline = finished(deployment, pushed_pipeline(repository.push()))
    assert pipeline["status"] == "failed"
    compile_job, unit = pipeline["jobs"]
    assert (compile_job["status"], compile_job["exit_code"]) == ("failed", 7)
    assert unit["status"] == "skipped"
    log = job_log(deployment, compile_job["id"])
    assert "error: it broke" in log
    assert "ERROR: Job failed: exit code 7" in log
    shown = deployment.cli("pipeline", str(pipeline["id"]))
    assert shown.returncode == 1
    assert "build/compile: failed exit code 7" in shown.stdout


def test_webhook_text_never_reaches_a_shell(
    deployment: Deployment, project: str, runner: ShipwayProcess, repository: Repository
) -> None:
    marker = Path(f"/tmp/shipway-pwned-{uuid.uuid4().hex[:8]}")
    repository.commit(
        {".shipway.yml": pipeline_file(("show", "test", ['echo "branch=$SHIPWAY_COMMIT_BRANCH"']))}
    )
    for branch in ('zzz";echo${IFS}"hello";#', f"x$(touch${{IFS}}{marker})"):
        pipeline = finished(
            deployment, pushed_pipeline(repository.push(f"HEAD:refs/heads/{branch}"))
        )
        assert pipeline["status"] == "success"
        assert pipeline["ref"]["name"] == branch
        log = job_log(deployment, pipeline["jobs"][0]["id"])
        assert f"branch={branch}\n" in log
        assert "hello\n" not in log.splitlines(keepends=True)
    assert not marker.exists()


def test_an_invalid_pipeline_file_fails_naming_the_line(
    deployment: Deployment, project: str, repository: Repository
) -> None:
    repository.commit({".shipway.yml": "image: x\njobs:\n  unit:\n    script: [a]\n    imgae: y\n"})
    pipeline = finished(deployment, pushed_pipeline(repository.push()))
    assert pipeline["status"] == "failed"
    assert pipeline["error"] == ".shipway.yml: line 5: jobs.unit.imgae: unknown key"
    assert pipeline["jobs"] == []


def test_a_commit_without_a_pipeline_file_fails_clearly(
    deployment: Deployment, project: str, repository: Repository
) -> None:
    sha = repository.commit({"README": "no pipeline here\n"})
    pipeline = finished(deployment, pushed_pipeline(repository.push()))
    assert pipeline["status"] == "failed"
    assert pipeline["error"] == f".shipway.yml not found at {sha}"


def test_a_tag_push_builds_the_tagged_commit(
    deployment: Deployment, project: str, runner: ShipwayProcess, repository: Repository
) -> None:
    sha = repository.commit(
        {".shipway.yml": pipeline_file(("show", "test", ['echo "tag=$SHIPWAY_COMMIT_TAG"']))}
    )
    repository.tag("v1.2.0", annotated=True)
    output = repository.push("refs/tags/v1.2.0")
    pipeline = finished(deployment, pushed_pipeline(output))
    assert (pipeline["ref"], pipeline["sha"], pipeline["source"]) == (
        {"kind": "tag", "name": "v1.2.0"},
        sha,
        "tag_push",
    )
    assert "tag=v1.2.0" in job_log(deployment, pipeline["jobs"][0]["id"])


def test_trigger_by_cli_and_follow_the_live_log(
    deployment: Deployment, project: str, runner: ShipwayProcess, repository: Repository
) -> None:
    repository.commit(
        {
            ".shipway.yml": pipeline_file(
                ("slow", "test", ["for i in 1 2 3; do echo tick $i; sleep 0.5; done"])
            )
        }
    )
    repository.push("HEAD:refs/heads/feature")
    triggered = deployment.cli("--json", "trigger", "app", "--branch", "feature")
    assert triggered.returncode == 0, triggered.stderr
    pipeline = json.loads(triggered.stdout)
    assert (pipeline["source"], pipeline["triggered_by"]) == ("api", "admin")
    with deployment.api() as api:
        wait_until(
            lambda: bool(api.get(f"/api/pipelines/{pipeline['id']}").json()["jobs"]), 30, "planning"
        )
        job_id = api.get(f"/api/pipelines/{pipeline['id']}").json()["jobs"][0]["id"]
    followed = deployment.cli("log", "--follow", str(job_id))
    assert followed.returncode == 0, followed.stderr
    assert "tick 1\n" in followed.stdout
    assert "tick 3\n" in followed.stdout
    assert followed.stdout.rstrip().endswith("Job succeeded")

    waited = deployment.cli("trigger", "app", "--branch", "feature", "--wait")
    assert waited.returncode == 0
    assert "success" in waited.stdout


def test_triggering_what_does_not_exist_is_refused(
    deployment: Deployment, project: str, repository: Repository
) -> None:
    repository.commit({"README": "x"})
    repository.push()
    absent = deployment.cli("trigger", "app", "--branch", "nope")
    assert absent.returncode == 2
    assert "branch 'nope' does not exist" in absent.stderr
    unknown = deployment.cli("trigger", "ghost", "--branch", "main")
    assert unknown.returncode == 2
    assert "project 'ghost' does not exist" in unknown.stderr
