"""The URL map of the server."""

from __future__ import annotations

from starlette.routing import Route

from server.endpoints import (
    artifacts,
    deployments,
    health,
    job_actions,
    lint,
    pipelines,
    projects,
    releases,
    runner_api,
    secrets,
    webhooks,
)

routes = [
    Route("/healthz", health.healthz, methods=["GET"]),
    Route("/metrics", health.metrics, methods=["GET"]),
    Route("/webhooks/gitlab", webhooks.gitlab_webhook, methods=["POST"]),
    Route("/api/lint", lint.lint_file, methods=["POST"]),
    Route("/api/projects", projects.list_projects, methods=["GET"]),
    Route("/api/projects", projects.create_project, methods=["POST"]),
    Route("/api/projects/{name}", projects.get_project, methods=["GET"]),
    Route("/api/projects/{name}", projects.update_project, methods=["PATCH"]),
    Route("/api/projects/{name}/pipelines", projects.trigger, methods=["POST"]),
    Route("/api/projects/{name}/environments", projects.environments, methods=["GET"]),
    Route(
        "/api/projects/{name}/environments/{environment}/config",
        deployments.put_config,
        methods=["PUT"],
    ),
    Route(
        "/api/projects/{name}/environments/{environment}/config",
        deployments.get_config,
        methods=["GET"],
    ),
    Route(
        "/api/projects/{name}/environments/{environment}/releases",
        releases.create,
        methods=["POST"],
    ),
    Route(
        "/api/projects/{name}/environments/{environment}/releases",
        releases.history,
        methods=["GET"],
    ),
    Route(
        "/api/projects/{name}/environments/{environment}/rollback",
        releases.roll_back,
        methods=["POST"],
    ),
    Route(
        "/api/projects/{name}/environments/{environment}/restart",
        releases.restart,
        methods=["POST"],
    ),
    Route(
        "/api/projects/{name}/environments/{environment}/instances/{instance}/logs",
        releases.instance_logs,
        methods=["GET"],
    ),
    Route("/api/releases/{release_id:int}", releases.show, methods=["GET"]),
    Route("/api/releases/{release_id:int}/retry", releases.retry, methods=["POST"]),
    Route("/api/releases/{release_id:int}/pause", releases.pause, methods=["POST"]),
    Route("/api/releases/{release_id:int}/resume", releases.resume, methods=["POST"]),
    Route("/api/releases/{release_id:int}/close", releases.close, methods=["POST"]),
    Route("/api/releases/{release_id:int}/mode", releases.switch_mode, methods=["POST"]),
    Route("/api/releases/{release_id:int}/traffic", releases.traffic, methods=["POST"]),
    Route(
        "/api/projects/{name}/environments/{environment}/compose",
        deployments.get_compose,
        methods=["GET"],
    ),
    Route("/api/projects/{name}/secrets", secrets.list_project_secrets, methods=["GET"]),
    Route("/api/projects/{name}/secrets/{secret}", secrets.put_project_secret, methods=["PUT"]),
    Route(
        "/api/projects/{name}/secrets/{secret}", secrets.delete_project_secret, methods=["DELETE"]
    ),
    Route("/api/pipelines", pipelines.list_pipelines, methods=["GET"]),
    Route("/api/pipelines/{pipeline_id:int}", pipelines.get_pipeline, methods=["GET"]),
    Route("/api/pipelines/{pipeline_id:int}/jobs", pipelines.list_jobs, methods=["GET"]),
    Route(
        "/api/pipelines/{pipeline_id:int}/cancel",
        job_actions.cancel_whole_pipeline,
        methods=["POST"],
    ),
    Route(
        "/api/pipelines/{pipeline_id:int}/retry", job_actions.retry_failed_jobs, methods=["POST"]
    ),
    Route("/api/pipelines/{pipeline_id:int}/tests", artifacts.pipeline_tests, methods=["GET"]),
    Route("/api/pipelines/{pipeline_id:int}/artifacts", artifacts.list_artifacts, methods=["GET"]),
    Route("/api/artifacts/{artifact_id:int}", artifacts.download, methods=["GET"]),
    Route("/api/runners", pipelines.list_runners, methods=["GET"]),
    Route("/api/jobs/{job_id:int}", pipelines.get_job, methods=["GET"]),
    Route("/api/jobs/{job_id:int}/cancel", job_actions.cancel_one_job, methods=["POST"]),
    Route("/api/jobs/{job_id:int}/retry", job_actions.retry_one_job, methods=["POST"]),
    Route("/api/jobs/{job_id:int}/play", job_actions.play_one_job, methods=["POST"]),
    Route("/api/jobs/{job_id:int}/log", pipelines.job_log, methods=["GET"]),
    Route("/api/jobs/{job_id:int}/log/stream", pipelines.job_log_stream, methods=["GET"]),
    Route("/api/runner/heartbeat", runner_api.heartbeat, methods=["POST"]),
    Route("/api/runner/jobs/{job_id:int}/start", runner_api.start, methods=["POST"]),
    Route("/api/runner/jobs/{job_id:int}/log", runner_api.append, methods=["POST"]),
    Route("/api/runner/jobs/{job_id:int}/image", runner_api.image, methods=["POST"]),
    Route("/api/runner/jobs/{job_id:int}/reports/junit", runner_api.junit_report, methods=["POST"]),
    Route("/api/runner/jobs/{job_id:int}/reports/scan", runner_api.scan_report, methods=["POST"]),
    Route("/api/runner/jobs/{job_id:int}/gate", runner_api.gate, methods=["POST"]),
    Route("/api/runner/jobs/{job_id:int}/finish", runner_api.finish, methods=["POST"]),
    Route(
        "/api/runner/releases/{release_id:int}/instances/{name}",
        runner_api.release_instance,
        methods=["POST"],
    ),
    Route(
        "/api/runner/releases/{release_id:int}/batches/{batch:int}/start",
        runner_api.release_batch_start,
        methods=["POST"],
    ),
    Route(
        "/api/runner/releases/{release_id:int}/batches/{batch:int}/done",
        runner_api.release_batch_done,
        methods=["POST"],
    ),
]
