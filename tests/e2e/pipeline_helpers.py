"""Helpers of the pipeline engine's end-to-end tests."""

from __future__ import annotations

import json
import uuid
from typing import Any

import docker
import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import remove_runner_containers
from tests.support.services import Deployment, ShipwayProcess, wait_until


class Processes:
    """Servers and runners a test starts and kills; all stopped at the end."""

    def __init__(self, deployment: Deployment, docker_client: docker.DockerClient) -> None:
        self.deployment = deployment
        self.docker_client = docker_client
        self.started: list[ShipwayProcess] = []
        self.runner_names: list[str] = []

    def server(self) -> ShipwayProcess:
        process = self.deployment.start_server()
        self.started.append(process)
        return process

    def runner(self, name: str) -> ShipwayProcess:
        process = self.deployment.start_runner(name)
        self.started.append(process)
        self.runner_names.append(name)
        return process

    def stop(self) -> None:
        for process in reversed(self.started):
            if process.process.poll() is None:
                process.stop()
        for name in self.runner_names:
            remove_runner_containers(self.docker_client, name)


def current_jobs(deployment: Deployment, pipeline_id: int) -> dict[str, dict[str, Any]]:
    """Name -> the latest attempt of each job of the pipeline."""
    with deployment.api() as api:
        jobs = api.get(f"/api/pipelines/{pipeline_id}/jobs").json()
    return {job["name"]: job for job in jobs if not job["retried"]}


def wait_for_job(
    deployment: Deployment, pipeline_id: int, name: str, status: str, timeout: float = 60
) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def reached() -> bool:
        found.update(current_jobs(deployment, pipeline_id).get(name, {}))
        return found.get("status") == status

    wait_until(reached, timeout, f"job {name} of pipeline {pipeline_id} {status}", pause=0.1)
    return found


def wait_for_pipeline(
    deployment: Deployment, pipeline_id: int, status: str, timeout: float = 90
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    with deployment.api() as api:

        def reached() -> bool:
            found.update(api.get(f"/api/pipelines/{pipeline_id}").json())
            return bool(found["status"] == status)

        wait_until(reached, timeout, f"pipeline {pipeline_id} {status}", pause=0.1)
    return found


def release(deployment: Deployment, release_id: int, status: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    with deployment.api() as api:

        def reached() -> bool:
            found.update(api.get(f"/api/releases/{release_id}").json())
            ended = found["status"] in ("success", "failed")
            if ended and found["status"] != status:  # say why at once, not after 90 s
                raise AssertionError(f"release {release_id} {found['status']}: {found['reason']}")
            return bool(found["status"] == status)

        wait_until(reached, 90, f"release {release_id} {status}", pause=0.2)
    return found


# busybox's httpd in the foreground, serving /srv/www on port 8000.
SERVE = ["httpd", "-f", "-p", "8000", "-h", "/srv/www"]


def site_release_jobs(
    busybox: str, image: dict[str, Any] | None = None, staging: dict[str, Any] | None = None
) -> str:
    """Two jobs of a pipeline file, as the YAML lines under its ``jobs:``: ``image``
    (stage ``package``) builds an image of busybox serving the repository's ``site/``
    (:data:`SERVE`), and ``staging`` (stage ``deploy``) releases it to staging.
    ``image`` and ``staging`` add settings to each job, written as JSON, which YAML
    reads as it is."""
    app = {"copy": ["site/"], "workdir": "/srv/www", "command": SERVE}
    lines = [
        "  image:",
        "    stage: package",
        "    kind: image",
        "    layers:",
        f"      os: {busybox}",
        f"      app: {json.dumps(app)}",
        *(f"    {key}: {json.dumps(value)}" for key, value in (image or {}).items()),
        "  staging:",
        "    stage: deploy",
        "    kind: deploy",
        "    environment: staging",
        *(f"    {key}: {json.dumps(value)}" for key, value in (staging or {}).items()),
    ]
    return "".join(f"{line}\n" for line in lines)


def release_history(
    deployment: Deployment, app: str, environment: str = "staging"
) -> dict[str, Any]:
    """``GET`` the environment's releases: its current version and its releases, newest
    first."""
    with deployment.api() as api:
        history: dict[str, Any] = api.get(
            f"/api/projects/{app}/environments/{environment}/releases"
        ).json()
    return history


def all_attempts(deployment: Deployment, pipeline_id: int) -> list[dict[str, Any]]:
    """Every attempt of every job of the pipeline, retried ones included, as the API
    lists them."""
    with deployment.api() as api:
        answer: list[dict[str, Any]] = api.get(f"/api/pipelines/{pipeline_id}/jobs").json()
    return answer


MetricKey = tuple[str, tuple[tuple[str, str], ...]]


def scraped_metrics(deployment: Deployment) -> dict[MetricKey, float]:
    """``GET /metrics`` of the running server, without a token as Prometheus scrapes
    it: (sample name, sorted labels) -> value."""
    answer = httpx.get(f"{deployment.url}/metrics", timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def deliver_merge_request_hook(
    deployment: Deployment,
    project_path: str,
    secret: str,
    *,
    iid: int,
    source_branch: str,
    sha: str,
    action: str = "open",
) -> httpx.Response:
    """POST GitLab's Merge Request Hook (its documented payload, trimmed to what a
    merge request of the project itself carries) to the server's webhook endpoint."""
    body = {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "user": {"id": 1, "name": "Administrator", "username": "root"},
        "project": {"id": 15, "name": "app", "path_with_namespace": project_path},
        "object_attributes": {
            "id": 1000 + iid,
            "iid": iid,
            "target_branch": "main",
            "source_branch": source_branch,
            "source_project_id": 15,
            "target_project_id": 15,
            "state": "opened",
            "action": action,
            "title": f"merge {source_branch}",
            "last_commit": {"id": sha, "message": "change", "title": "change"},
            "url": f"https://gitlab.example.com/{project_path}/-/merge_requests/{iid}",
        },
    }
    headers = {
        "X-Gitlab-Event": "Merge Request Hook",
        "X-Gitlab-Token": secret,
        "X-Gitlab-Event-UUID": str(uuid.uuid4()),
        "Idempotency-Key": str(uuid.uuid4()),
        "User-Agent": "GitLab/18.0.0",
    }
    return httpx.post(f"{deployment.url}/webhooks/gitlab", json=body, headers=headers, timeout=10)
