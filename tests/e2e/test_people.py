"""People and runners with tokens of their own, end to end: the CLI as a real
process makes a user and a runner's own token; a real runner started with that token
takes and runs a pushed pipeline's job on the Docker Engine, and once the token is
revoked the server refuses it. A deploy job to a protected environment waits for an
ops approval given with the CLI, then releases; the digest it released is promoted to
production, which awaits approval in turn."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import httpx
import pytest

from tests.e2e.pipeline_helpers import site_release_jobs
from tests.e2e.test_push_to_pipeline import SECRET, finished, pipeline_file, pushed_pipeline
from tests.support.git import Repository
from tests.support.services import Deployment, RegistryServer, ShipwayProcess, wait_until

pytestmark = pytest.mark.docker


def test_a_runner_works_with_its_own_token_until_it_is_revoked(
    deployment: Deployment,
    server: ShipwayProcess,
    runner_name: str,
    repository: Repository,
    busybox: str,
) -> None:
    made = deployment.cli("--json", "runner-token", "create", runner_name)
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)
    runner = deployment.start_runner(runner_name, env={"SHIPWAY_RUNNER_TOKEN": token["token"]})
    try:
        deployment.add_project("app", repository.bare, "t/app", SECRET)
        repository.commit({".shipway.yml": pipeline_file(("hello", "build", ["echo hi"]))})
        pipeline = finished(deployment, pushed_pipeline(repository.push()))
        assert pipeline["status"] == "success", pipeline
        assert pipeline["jobs"][0]["runner"] == runner_name

        heartbeat = {"runner": "someone-else", "queues": ["build"], "host": "h", "pid": 1}
        with httpx.Client(base_url=deployment.url) as client:
            own = {"Authorization": f"Bearer {token['token']}"}
            other = client.post("/api/runner/heartbeat", json=heartbeat, headers=own)
            assert other.status_code == 403, other.text
            revoked = deployment.cli("runner-token", "revoke", str(token["id"]))
            assert revoked.returncode == 0, revoked.stderr
            beat = heartbeat | {"runner": runner_name}
            refused = client.post("/api/runner/heartbeat", json=beat, headers=own)
            assert refused.status_code == 401, refused.text

        said = "heartbeat refused by the server: " + json.dumps(
            {"error": "runner token is wrong or revoked"}, separators=(",", ":")
        )
        wait_until(lambda: said in runner.log(), 60, "the runner's next heartbeat refused")
    finally:
        runner.stop()


def test_the_cli_refuses_a_user_without_the_role(
    deployment: Deployment, server: ShipwayProcess
) -> None:
    added = deployment.cli("user", "add", "tess", "--role", "tester")
    assert added.returncode == 0, added.stderr
    made = deployment.cli("token", "create", "--user", "tess", "--name", "laptop")
    assert made.returncode == 0, made.stderr
    tess = deployment.env() | {"SHIPWAY_API_TOKEN": made.stdout.strip()}
    refused = subprocess.run(
        [sys.executable, "-m", "server.cli.main", "user", "add", "mallory", "--role", "admin"],
        env=tess,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "tess may not manage_users" in refused.stderr
    listed = deployment.cli("user", "list")
    assert "mallory" not in listed.stdout


def test_a_deploy_job_to_a_protected_environment_waits_for_ops(
    deployment: Deployment,
    deploy_runner: ShipwayProcess,
    busybox: str,
    app: str,
    repository: Repository,
    registry: RegistryServer,
    images_made: None,
) -> None:
    deployment.add_project(app, repository.bare, f"t/{app}", "s" * 20)
    for name in ("olga", "dave"):
        role = "ops" if name == "olga" else f"developer:{app}"
        added = deployment.cli("user", "add", name, "--role", role)
        assert added.returncode == 0, added.stderr
    base = f"/api/projects/{app}/environments/staging"
    with deployment.api() as api:
        api.put(f"{base}/config", json={"instances": 1, "ports": [{"container": 8000}]})
        api.put(f"{base}/protection", json={"approvals": 1}).raise_for_status()
    repository.commit(
        {
            ".shipway.yml": "stages: [package, deploy]\njobs:\n" + site_release_jobs(busybox),
            "site/index.html": "approved\n",
        }
    )
    pipeline_id = pushed_pipeline(repository.push())
    release: dict[str, Any] = {}

    def awaiting() -> bool:
        with deployment.api() as api:
            found = api.get(f"{base}/releases").json()["releases"]
            if found:
                release.update(api.get(f"/api/releases/{found[0]['id']}").json())
        return release.get("status") == "awaiting_approval"

    wait_until(awaiting, 120, "the deploy job's release awaiting approval")
    assert release["waiting"] == "waiting for 1 more approval by ops (olga)"
    olga = deployment.cli("--json", "token", "create", "--user", "olga", "--name", "t")
    token = json.loads(olga.stdout)["token"]
    approve = [sys.executable, "-m", "server.cli.main", "release", "approve", str(release["id"])]
    approved = subprocess.run(
        [*approve, "-m", "staging looks right"],
        env=deployment.env() | {"SHIPWAY_API_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert approved.returncode == 0, approved.stderr
    pipeline = finished(deployment, pipeline_id, timeout=180)
    assert pipeline["status"] == "success", pipeline
    with deployment.api() as api:
        (entry,) = api.get("/api/audit", params={"action": "release.approve"}).json()
        staging_runs = api.get(f"{base}/releases").json()["current_version"]
        production = f"/api/projects/{app}/environments/production/config"
        api.put(production, json={"instances": 2}).raise_for_status()
    assert (entry["user"], entry["project"], entry["environment"]) == ("olga", app, "staging")

    # Promotion: exactly the digest staging runs, to production, which awaits approval.
    promoted = subprocess.run(
        [sys.executable, "-m", "server.cli.main", "--json", "promote", app, "--to", "production"],
        env=deployment.env() | {"SHIPWAY_API_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert promoted.returncode == 0, promoted.stderr
    made = json.loads(promoted.stdout)
    assert "@sha256:" in staging_runs
    assert (made["image"], made["environment"], made["status"]) == (
        staging_runs,
        "production",
        "awaiting_approval",
    )
