"""The URL map of the server, and who may call each route (server/access.py).

Every route is made by :func:`public`, :func:`api`, :func:`runner` or, for the
webhook, a :class:`GuardedRoute` with the webhook's own guard: the caller is
checked before the endpoint runs.
"""

from __future__ import annotations

from pipelines.deploy_config import DeployConfig
from pipelines.roles import Permission
from server.access import Access, GuardedRoute, api, public, runner
from server.endpoints import (
    approvals,
    artifacts,
    audit,
    deployments,
    health,
    job_actions,
    lint,
    pipelines,
    projects,
    releases,
    runner_api,
    runner_tokens,
    secrets,
    users,
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
    api("/api/lint", lint.lint_file, Permission.READ, "POST", body=lint.LintIn),
    api("/api/projects", projects.list_projects, Permission.READ),
    api(
        "/api/projects",
        projects.create_project,
        Permission.MANAGE_PROJECTS,
        "POST",
        body=projects.ProjectIn,
    ),
    api("/api/projects/{name}", projects.get_project, Permission.READ),
    api(
        "/api/projects/{name}",
        projects.update_project,
        Permission.MANAGE_PROJECTS,
        "PATCH",
        body=projects.ProjectChange,
    ),
    api(
        "/api/projects/{name}/pipelines",
        projects.trigger,
        Permission.TRIGGER,
        "POST",
        body=projects.TriggerIn,
    ),
    api("/api/projects/{name}/environments", projects.environments, Permission.READ),
    api(
        ENVIRONMENT + "/config",
        deployments.put_config,
        Permission.CONFIGURE,
        "PUT",
        body=DeployConfig,
    ),
    api(ENVIRONMENT + "/config", deployments.get_config, Permission.READ),
    api(
        ENVIRONMENT + "/releases",
        releases.create,
        Permission.RELEASE,
        "POST",
        body=releases.ReleaseIn,
    ),
    api(ENVIRONMENT + "/releases", releases.history, Permission.READ),
    api(
        "/api/projects/{name}/promotions",
        releases.promote,
        Permission.RELEASE,
        "POST",
        body=releases.PromotionIn,
    ),
    api(
        ENVIRONMENT + "/rollback",
        releases.roll_back,
        Permission.RELEASE,
        "POST",
        body=releases.RollbackIn,
    ),
    api(
        ENVIRONMENT + "/restart",
        releases.restart,
        Permission.RELEASE,
        "POST",
        body=releases.RestartIn,
    ),
    api(ENVIRONMENT + "/instances/{instance}/logs", releases.instance_logs, Permission.READ),
    api(RELEASE, releases.show, Permission.READ),
    api(RELEASE + "/approve", approvals.approve, Permission.APPROVE, "POST", approvals.DecisionIn),
    api(RELEASE + "/reject", approvals.reject, Permission.APPROVE, "POST", approvals.RejectionIn),
    api(ENVIRONMENT + "/protection", approvals.get_protection, Permission.READ),
    api(ENVIRONMENT + "/verdicts", approvals.list_verdicts, Permission.READ),
    api(
        ENVIRONMENT + "/verdicts",
        approvals.give_verdict,
        Permission.VERDICT,
        "POST",
        approvals.VerdictIn,
    ),
    api(
        ENVIRONMENT + "/protection",
        approvals.put_protection,
        Permission.MANAGE_PROJECTS,
        "PUT",
        approvals.ProtectionIn,
    ),
    api(RELEASE + "/retry", releases.retry, Permission.RELEASE, "POST"),
    api(RELEASE + "/pause", releases.pause, Permission.RELEASE, "POST"),
    api(RELEASE + "/resume", releases.resume, Permission.RELEASE, "POST"),
    api(RELEASE + "/close", releases.close, Permission.RELEASE, "POST"),
    api(RELEASE + "/mode", releases.switch_mode, Permission.RELEASE, "POST", body=releases.ModeIn),
    api(
        RELEASE + "/traffic", releases.traffic, Permission.RELEASE, "POST", body=releases.TrafficIn
    ),
    api(ENVIRONMENT + "/compose", deployments.get_compose, Permission.READ),
    api("/api/projects/{name}/secrets", secrets.list_project_secrets, Permission.SECRETS),
    api(
        "/api/projects/{name}/secrets/{secret}",
        secrets.put_project_secret,
        Permission.SECRETS,
        "PUT",
        body=secrets.SecretIn,
    ),
    api(
        "/api/projects/{name}/secrets/{secret}",
        secrets.delete_project_secret,
        Permission.SECRETS,
        "DELETE",
    ),
    api("/api/pipelines", pipelines.list_pipelines, Permission.READ),
    api(PIPELINE, pipelines.get_pipeline, Permission.READ),
    api(PIPELINE + "/jobs", pipelines.list_jobs, Permission.READ),
    api(PIPELINE + "/cancel", job_actions.cancel_whole_pipeline, Permission.CANCEL, "POST"),
    api(PIPELINE + "/retry", job_actions.retry_failed_jobs, Permission.RETRY, "POST"),
    api(PIPELINE + "/tests", artifacts.pipeline_tests, Permission.READ),
    api(PIPELINE + "/artifacts", artifacts.list_artifacts, Permission.READ),
    api("/api/artifacts/{artifact_id:int}", artifacts.download, Permission.READ),
    api("/api/runners", pipelines.list_runners, Permission.READ),
    api(JOB, pipelines.get_job, Permission.READ),
    api(JOB + "/cancel", job_actions.cancel_one_job, Permission.CANCEL, "POST"),
    api(JOB + "/retry", job_actions.retry_one_job, Permission.RETRY, "POST"),
    api(JOB + "/play", job_actions.play_one_job, Permission.PLAY, "POST"),
    api(JOB + "/log", pipelines.job_log, Permission.READ),
    api(JOB + "/log/stream", pipelines.job_log_stream, Permission.READ),
    api("/api/audit", audit.audit_log, Permission.AUDIT),
    api("/api/me", users.me, Permission.ACCOUNT),
    api("/api/users", users.list_users, Permission.MANAGE_USERS),
    api("/api/users", users.create_user, Permission.MANAGE_USERS, "POST", body=users.UserIn),
    api("/api/users/{user}", users.get_user, Permission.MANAGE_USERS),
    api(
        "/api/users/{user}/roles",
        users.change_roles,
        Permission.MANAGE_USERS,
        "POST",
        body=users.RolesChange,
    ),
    api("/api/users/{user}/disable", users.disable_user, Permission.MANAGE_USERS, "POST"),
    api(
        "/api/users/{user}/password",
        users.set_password,
        Permission.ACCOUNT,
        "PUT",
        body=users.PasswordIn,
    ),
    api("/api/tokens", users.list_tokens, Permission.ACCOUNT),
    api("/api/tokens", users.create_token, Permission.ACCOUNT, "POST", body=users.TokenIn),
    api("/api/tokens/{token_id:int}", users.revoke_token, Permission.ACCOUNT, "DELETE"),
    api("/api/runner-tokens", runner_tokens.listed, Permission.MANAGE_RUNNERS),
    api(
        "/api/runner-tokens",
        runner_tokens.create,
        Permission.MANAGE_RUNNERS,
        "POST",
        body=runner_tokens.RunnerTokenIn,
    ),
    api(
        "/api/runner-tokens/{token_id:int}",
        runner_tokens.revoke,
        Permission.MANAGE_RUNNERS,
        "DELETE",
    ),
    runner("/api/runner/heartbeat", runner_api.heartbeat, body=runner_api.HeartbeatIn),
    runner(RUNNER_JOB + "/start", runner_api.start, body=runner_api.StartIn),
    runner(RUNNER_JOB + "/log", runner_api.append, body="text/plain"),
    runner(RUNNER_JOB + "/image", runner_api.image, body=runner_api.ImageIn),
    runner(RUNNER_JOB + "/reports/junit", runner_api.junit_report, body="application/xml"),
    runner(RUNNER_JOB + "/reports/scan", runner_api.scan_report, body="application/json"),
    runner(RUNNER_JOB + "/gate", runner_api.gate),
    runner(RUNNER_JOB + "/finish", runner_api.finish, body=runner_api.FinishIn),
    runner(
        RUNNER_RELEASE + "/instances/{name}",
        runner_api.release_instance,
        body=runner_api.InstanceIn,
    ),
    runner(
        RUNNER_RELEASE + "/batches/{batch:int}/start",
        runner_api.release_batch_start,
        body=runner_api.BatchClaimIn,
    ),
    runner(
        RUNNER_RELEASE + "/batches/{batch:int}/done",
        runner_api.release_batch_done,
        body=runner_api.BatchDoneIn,
    ),
]
