"""Helpers of the pipeline engine's end-to-end tests."""

from __future__ import annotations

from typing import Any

from tests.support.services import Deployment, wait_until


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
