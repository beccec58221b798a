"""The URL map of the server, and who may call each route (server/access.py).

Every route is made by :func:`public`, :func:`api`, :func:`runner` or, for the
webhook, a :class:`GuardedRoute` with the webhook's own guard: the caller is
checked before the endpoint runs.
"""

from __future__ import annotations

from server.access import Access, GuardedRoute, api, public, runner
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
    public("/healthz", health.healthz),
    public("/metrics", health.metrics),
    GuardedRoute(
        "/webhooks/gitlab",
        webhooks.gitlab_webhook,
        "POST",
        Access.WEBHOOK,
        guard=webhooks.authenticate,  # the token is the secret of some registered project
    ),
    api("/api/lint", lint.lint_file, "POST"),
    api("/api/projects", projects.list_projects),
    api("/api/projects", projects.create_project, "POST"),
    api("/api/projects/{name}", projects.get_project),
    api("/api/projects/{name}", projects.update_project, "PATCH"),
    api("/api/projects/{name}/pipelines", projects.trigger, "POST"),
    api("/api/projects/{name}/environments", projects.environments),
    api("/api/projects/{name}/environments/{environment}/config", deployments.put_config, "PUT"),
    api("/api/projects/{name}/environments/{environment}/config", deployments.get_config),
    api("/api/projects/{name}/environments/{environment}/releases", releases.create, "POST"),
    api("/api/projects/{name}/environments/{environment}/releases", releases.history),
    api("/api/projects/{name}/environments/{environment}/rollback", releases.roll_back, "POST"),
    api("/api/projects/{name}/environments/{environment}/restart", releases.restart, "POST"),
    api(
        "/api/projects/{name}/environments/{environment}/instances/{instance}/logs",
        releases.instance_logs,
    ),
    api("/api/releases/{release_id:int}", releases.show),
    api("/api/releases/{release_id:int}/retry", releases.retry, "POST"),
    api("/api/releases/{release_id:int}/pause", releases.pause, "POST"),
    api("/api/releases/{release_id:int}/resume", releases.resume, "POST"),
    api("/api/releases/{release_id:int}/close", releases.close, "POST"),
    api("/api/releases/{release_id:int}/mode", releases.switch_mode, "POST"),
    api("/api/releases/{release_id:int}/traffic", releases.traffic, "POST"),
    api("/api/projects/{name}/environments/{environment}/compose", deployments.get_compose),
    api("/api/projects/{name}/secrets", secrets.list_project_secrets),
    api("/api/projects/{name}/secrets/{secret}", secrets.put_project_secret, "PUT"),
    api("/api/projects/{name}/secrets/{secret}", secrets.delete_project_secret, "DELETE"),
    api("/api/pipelines", pipelines.list_pipelines),
    api("/api/pipelines/{pipeline_id:int}", pipelines.get_pipeline),
    api("/api/pipelines/{pipeline_id:int}/jobs", pipelines.list_jobs),
    api("/api/pipelines/{pipeline_id:int}/cancel", job_actions.cancel_whole_pipeline, "POST"),
    api("/api/pipelines/{pipeline_id:int}/retry", job_actions.retry_failed_jobs, "POST"),
    api("/api/pipelines/{pipeline_id:int}/tests", artifacts.pipeline_tests),
    api("/api/pipelines/{pipeline_id:int}/artifacts", artifacts.list_artifacts),
    api("/api/artifacts/{artifact_id:int}", artifacts.download),
    api("/api/runners", pipelines.list_runners),
    api("/api/jobs/{job_id:int}", pipelines.get_job),
    api("/api/jobs/{job_id:int}/cancel", job_actions.cancel_one_job, "POST"),
    api("/api/jobs/{job_id:int}/retry", job_actions.retry_one_job, "POST"),
    api("/api/jobs/{job_id:int}/play", job_actions.play_one_job, "POST"),
    api("/api/jobs/{job_id:int}/log", pipelines.job_log),
    api("/api/jobs/{job_id:int}/log/stream", pipelines.job_log_stream),
    runner("/api/runner/heartbeat", runner_api.heartbeat),
    runner("/api/runner/jobs/{job_id:int}/start", runner_api.start),
    runner("/api/runner/jobs/{job_id:int}/log", runner_api.append),
    runner("/api/runner/jobs/{job_id:int}/image", runner_api.image),
    runner("/api/runner/jobs/{job_id:int}/reports/junit", runner_api.junit_report),
    runner("/api/runner/jobs/{job_id:int}/reports/scan", runner_api.scan_report),
    runner("/api/runner/jobs/{job_id:int}/gate", runner_api.gate),
    runner("/api/runner/jobs/{job_id:int}/finish", runner_api.finish),
    runner("/api/runner/releases/{release_id:int}/instances/{name}", runner_api.release_instance),
    runner(
        "/api/runner/releases/{release_id:int}/batches/{batch:int}/start",
        runner_api.release_batch_start,
    ),
    runner(
        "/api/runner/releases/{release_id:int}/batches/{batch:int}/done",
        runner_api.release_batch_done,
    ),
]
