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

# What many routes' paths begin with: each path parameter is spelled in one place.
ENVIRONMENT = "/api/projects/{name}/environments/{environment}"
RELEASE = "/api/releases/{release_id:int}"
PIPELINE = "/api/pipelines/{pipeline_id:int}"
JOB = "/api/jobs/{job_id:int}"
RUNNER_JOB = "/api/runner/jobs/{job_id:int}"
RUNNER_RELEASE = "/api/runner/releases/{release_id:int}"

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
    api(ENVIRONMENT + "/config", deployments.put_config, "PUT"),
    api(ENVIRONMENT + "/config", deployments.get_config),
    api(ENVIRONMENT + "/releases", releases.create, "POST"),
    api(ENVIRONMENT + "/releases", releases.history),
    api(ENVIRONMENT + "/rollback", releases.roll_back, "POST"),
    api(ENVIRONMENT + "/restart", releases.restart, "POST"),
    api(ENVIRONMENT + "/instances/{instance}/logs", releases.instance_logs),
    api(RELEASE, releases.show),
    api(RELEASE + "/retry", releases.retry, "POST"),
    api(RELEASE + "/pause", releases.pause, "POST"),
    api(RELEASE + "/resume", releases.resume, "POST"),
    api(RELEASE + "/close", releases.close, "POST"),
    api(RELEASE + "/mode", releases.switch_mode, "POST"),
    api(RELEASE + "/traffic", releases.traffic, "POST"),
    api(ENVIRONMENT + "/compose", deployments.get_compose),
    api("/api/projects/{name}/secrets", secrets.list_project_secrets),
    api("/api/projects/{name}/secrets/{secret}", secrets.put_project_secret, "PUT"),
    api("/api/projects/{name}/secrets/{secret}", secrets.delete_project_secret, "DELETE"),
    api("/api/pipelines", pipelines.list_pipelines),
    api(PIPELINE, pipelines.get_pipeline),
    api(PIPELINE + "/jobs", pipelines.list_jobs),
    api(PIPELINE + "/cancel", job_actions.cancel_whole_pipeline, "POST"),
    api(PIPELINE + "/retry", job_actions.retry_failed_jobs, "POST"),
    api(PIPELINE + "/tests", artifacts.pipeline_tests),
    api(PIPELINE + "/artifacts", artifacts.list_artifacts),
    api("/api/artifacts/{artifact_id:int}", artifacts.download),
    api("/api/runners", pipelines.list_runners),
    api(JOB, pipelines.get_job),
    api(JOB + "/cancel", job_actions.cancel_one_job, "POST"),
    api(JOB + "/retry", job_actions.retry_one_job, "POST"),
    api(JOB + "/play", job_actions.play_one_job, "POST"),
    api(JOB + "/log", pipelines.job_log),
    api(JOB + "/log/stream", pipelines.job_log_stream),
    runner("/api/runner/heartbeat", runner_api.heartbeat),
    runner(RUNNER_JOB + "/start", runner_api.start),
    runner(RUNNER_JOB + "/log", runner_api.append),
    runner(RUNNER_JOB + "/image", runner_api.image),
    runner(RUNNER_JOB + "/reports/junit", runner_api.junit_report),
    runner(RUNNER_JOB + "/reports/scan", runner_api.scan_report),
    runner(RUNNER_JOB + "/gate", runner_api.gate),
    runner(RUNNER_JOB + "/finish", runner_api.finish),
    runner(RUNNER_RELEASE + "/instances/{name}", runner_api.release_instance),
    runner(RUNNER_RELEASE + "/batches/{batch:int}/start", runner_api.release_batch_start),
    runner(RUNNER_RELEASE + "/batches/{batch:int}/done", runner_api.release_batch_done),
]
