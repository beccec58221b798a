"""Domain objects as the JSON the API answers with."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipelines.model import BuiltImage, Job, Pipeline, Project, Runner
from server.store.jobs import elapsed


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def project_json(project: Project) -> dict[str, Any]:
    return {
        "id": project.id,
        "name": project.name,
        "clone_url": project.clone_url,
        "gitlab_path": project.gitlab_path,
        "branches": list(project.branches),
        "tags": list(project.tags),
        "supersede": project.supersede,
        "created_at": _time(project.created_at),
    }


def image_json(image: BuiltImage) -> dict[str, Any]:
    return {
        "job_id": image.job_id,
        "repository": image.repository,
        "tag": image.tag,
        "digest": image.digest,
        "reference": image.reference,
        "middleware": image.middleware,
        "pushed_bytes": image.pushed_bytes,
        "app_layer_bytes": image.app_layer_bytes,
        "runtime_mounts": list(image.runtime_mounts),
        "created_at": _time(image.created_at),
    }


def pipeline_json(
    pipeline: Pipeline,
    jobs: list[Job] | None = None,
    images: list[BuiltImage] | None = None,
    waits: dict[int, str] | None = None,
    waiting: str | None = None,
) -> dict[str, Any]:
    """``waits`` says why each waiting job waits, ``waiting`` why the pipeline does
    (see ``server.usecases.waiting``)."""
    body: dict[str, Any] = {
        "id": pipeline.id,
        "project_id": pipeline.project_id,
        "ref": {"kind": pipeline.ref.kind.value, "name": pipeline.ref.name},
        "sha": pipeline.sha,
        "source": pipeline.source,
        "status": pipeline.status.value,
        "waiting": waiting,
        "error": pipeline.error,
        "triggered_by": pipeline.triggered_by,
        "merge_request_iid": pipeline.merge_request_iid,
        "created_at": _time(pipeline.created_at),
        "started_at": _time(pipeline.started_at),
        "finished_at": _time(pipeline.finished_at),
    }
    if jobs is not None:
        body["jobs"] = [job_json(job, (waits or {}).get(job.id)) for job in jobs]
    if images is not None:
        body["images"] = [image_json(image) for image in images]
    return body


def job_json(job: Job, waiting: str | None = None) -> dict[str, Any]:
    """``waiting``: why a job that has not started waits, when it does."""
    return {
        "id": job.id,
        "pipeline_id": job.pipeline_id,
        "name": job.name,
        "stage": job.stage,
        "image": job.image,
        "queue": job.queue,
        "kind": job.kind,
        "needs": list(job.needs) if job.needs is not None else None,
        "when": job.when,
        "allow_failure": job.allow_failure,
        "environment": job.environment,
        "secrets": list(job.secrets),
        "status": job.status.value,
        "waiting": waiting,
        "attempt": job.attempt,
        "retried": job.retried,
        "played_by": job.played_by,
        "exit_code": job.exit_code,
        "failure_kind": job.failure_kind,
        "failure_reason": job.failure_reason,
        "runner": job.runner,
        "timeout_seconds": job.timeout_seconds,
        "created_at": _time(job.created_at),
        "queued_at": _time(job.queued_at),
        "started_at": _time(job.started_at),
        "finished_at": _time(job.finished_at),
        "duration_seconds": elapsed(job),
    }


def runner_json(runner: Runner, online: bool) -> dict[str, Any]:
    return {
        "name": runner.name,
        "queues": list(runner.queues),
        "host": runner.host,
        "pid": runner.pid,
        "current_job_id": runner.current_job_id,
        "online": online,
        "first_seen": _time(runner.first_seen),
        "last_seen": _time(runner.last_seen),
        "problem": runner.problem,
    }
