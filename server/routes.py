"""The URL map of the server."""

from __future__ import annotations

from starlette.routing import Route

from server.endpoints import health, lint, pipelines, projects, runner_api, webhooks

routes = [
    Route("/healthz", health.healthz, methods=["GET"]),
    Route("/webhooks/gitlab", webhooks.gitlab_webhook, methods=["POST"]),
    Route("/api/lint", lint.lint_file, methods=["POST"]),
    Route("/api/projects", projects.list_projects, methods=["GET"]),
    Route("/api/projects", projects.create_project, methods=["POST"]),
    Route("/api/projects/{name}", projects.get_project, methods=["GET"]),
    Route("/api/projects/{name}/pipelines", projects.trigger, methods=["POST"]),
    Route("/api/pipelines", pipelines.list_pipelines, methods=["GET"]),
    Route("/api/pipelines/{pipeline_id:int}", pipelines.get_pipeline, methods=["GET"]),
    Route("/api/pipelines/{pipeline_id:int}/jobs", pipelines.list_jobs, methods=["GET"]),
    Route("/api/runners", pipelines.list_runners, methods=["GET"]),
    Route("/api/jobs/{job_id:int}", pipelines.get_job, methods=["GET"]),
    Route("/api/jobs/{job_id:int}/log", pipelines.job_log, methods=["GET"]),
    Route("/api/jobs/{job_id:int}/log/stream", pipelines.job_log_stream, methods=["GET"]),
    Route("/api/runner/heartbeat", runner_api.heartbeat, methods=["POST"]),
    Route("/api/runner/jobs/{job_id:int}/start", runner_api.start, methods=["POST"]),
    Route("/api/runner/jobs/{job_id:int}/log", runner_api.append, methods=["POST"]),
    Route("/api/runner/jobs/{job_id:int}/finish", runner_api.finish, methods=["POST"]),
]
