"""The database schema, as SQLAlchemy Core tables. Alembic migrations build it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, whatever the database keeps."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("clone_url", sa.String(1000), nullable=False),
    sa.Column("gitlab_path", sa.String(255), nullable=False, unique=True),
    sa.Column("webhook_secret", sa.String(255), nullable=False),
    sa.Column("branches", sa.JSON, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("supersede", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("delivery_key", sa.String(255), nullable=True),
    sa.Column("event", sa.String(100), nullable=False),
    sa.Column("headers", sa.JSON, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("outcome", sa.String(255), nullable=False),
    sa.Column("pipeline_id", sa.Integer, nullable=True),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("project_id", "delivery_key"),
)

pipelines = sa.Table(
    "pipelines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.ForeignKey("projects.id"), nullable=False, index=True),
    sa.Column("ref_kind", sa.String(10), nullable=False),
    sa.Column("ref_name", sa.String(255), nullable=False),
    sa.Column("sha", sa.String(40), nullable=False),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("planned", sa.Boolean, nullable=False, default=False, index=True),
    # Set in the transaction that changes one of its jobs (or frees an environment
    # its jobs may wait for); the engine advances the pipelines that have it set,
    # and clears it as it takes them (server.engine).
    sa.Column("advance_due", sa.Boolean, nullable=False, default=False, index=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("triggered_by", sa.String(255), nullable=True),
    sa.Column("merge_request_iid", sa.Integer, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=True),
    sa.Column("finished_at", UtcDateTime, nullable=True),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("pipeline_id", sa.ForeignKey("pipelines.id"), nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("stage", sa.String(100), nullable=False),
    sa.Column("stage_index", sa.Integer, nullable=False),
    sa.Column("image", sa.String(500), nullable=False),
    sa.Column("script", sa.JSON, nullable=False),
    sa.Column("variables", sa.JSON, nullable=False),
    sa.Column("timeout_seconds", sa.Integer, nullable=False),
    sa.Column("queue", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False, default="script"),
    sa.Column("needs", sa.JSON, nullable=True),
    sa.Column("when", sa.String(20), nullable=False, default="on_success"),
    sa.Column("allow_failure", sa.Boolean, nullable=False, default=False),
    sa.Column("retry_max", sa.Integer, nullable=False, default=0),
    sa.Column("retry_on", sa.JSON, nullable=False, default=list),
    sa.Column("environment", sa.String(100), nullable=True),
    sa.Column("secrets", sa.JSON, nullable=False, default=list),
    sa.Column("settings", sa.JSON, nullable=True),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("attempt", sa.Integer, nullable=False, default=1),
    sa.Column("retried", sa.Boolean, nullable=False, default=False),
    sa.Column("played_by", sa.String(255), nullable=True),
    sa.Column("exit_code", sa.Integer, nullable=True),
    sa.Column("failure_kind", sa.String(30), nullable=True),
    sa.Column("failure_reason", sa.Text, nullable=True),
    sa.Column("runner", sa.String(255), nullable=True),
    sa.Column("log_length", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("queued_at", UtcDateTime, nullable=True),  # when it last became pending
    sa.Column("started_at", UtcDateTime, nullable=True),
    sa.Column("finished_at", UtcDateTime, nullable=True),
)

log_chunks = sa.Table(
    "log_chunks",
    metadata,
    sa.Column("job_id", sa.ForeignKey("jobs.id"), primary_key=True),
    sa.Column("offset", sa.Integer, primary_key=True),
    sa.Column("content", sa.Text, nullable=False),
)

runners = sa.Table(
    "runners",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("queues", sa.JSON, nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("current_job_id", sa.Integer, nullable=True),
    sa.Column("first_seen", UtcDateTime, nullable=False),
    sa.Column("last_seen", UtcDateTime, nullable=False),
    sa.Column("problem", sa.Text, nullable=True),
)

secrets = sa.Table(
    "secrets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("environment", sa.String(100), nullable=False),  # "*": every environment
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("ciphertext", sa.Text, nullable=False),
    sa.Column("updated_by", sa.String(255), nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("project_id", "environment", "name"),
)

# Who deploys to an environment now. A row whose job has finished is a free lock.
environment_locks = sa.Table(
    "environment_locks",
    metadata,
    sa.Column("project_id", sa.ForeignKey("projects.id"), primary_key=True),
    sa.Column("environment", sa.String(100), primary_key=True),
    sa.Column("job_id", sa.ForeignKey("jobs.id"), nullable=False),
    sa.Column("acquired_at", UtcDateTime, nullable=False),
)

images = sa.Table(
    "images",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("pipeline_id", sa.ForeignKey("pipelines.id"), nullable=False, index=True),
    sa.Column("job_id", sa.ForeignKey("jobs.id"), nullable=False, unique=True),
    sa.Column("repository", sa.String(500), nullable=False),
    sa.Column("tag", sa.String(128), nullable=False),
    sa.Column("digest", sa.String(100), nullable=False),
    sa.Column("middleware", sa.String(500), nullable=True),
    sa.Column("pushed_bytes", sa.BigInteger, nullable=False),
    sa.Column("app_layer_bytes", sa.BigInteger, nullable=True),
    sa.Column("runtime_mounts", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("pipeline_id", sa.ForeignKey("pipelines.id"), nullable=False, index=True),
    sa.Column("job_id", sa.ForeignKey("jobs.id"), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),  # junit, scan, compose
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("media_type", sa.String(100), nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("job_id", "kind", "name"),
)

test_cases = sa.Table(
    "test_cases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("job_id", sa.ForeignKey("jobs.id"), nullable=False, index=True),
    sa.Column("artifact_id", sa.ForeignKey("artifacts.id"), nullable=False),
    sa.Column("suite", sa.String(500), nullable=False),
    sa.Column("classname", sa.String(500), nullable=False),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("outcome", sa.String(10), nullable=False),
    sa.Column("seconds", sa.Float, nullable=True),
    sa.Column("message", sa.Text, nullable=True),
)

deploy_configs = sa.Table(
    "deploy_configs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("environment", sa.String(100), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("project_id", "environment", "version"),
)

# A host port belongs to one instance's container port, across every application.
port_allocations = sa.Table(
    "port_allocations",
    metadata,
    sa.Column("host_port", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("project_id", sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("environment", sa.String(100), nullable=False),
    sa.Column("instance", sa.Integer, nullable=False),
    sa.Column("container_port", sa.Integer, nullable=False),
    sa.Column("allocated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("project_id", "environment", "instance", "container_port"),
)

releases = sa.Table(
    "releases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.ForeignKey("projects.id"), nullable=False, index=True),
    sa.Column("environment", sa.String(100), nullable=False),
    sa.Column("image", sa.String(600), nullable=False),
    sa.Column("config_version", sa.Integer, nullable=False),
    sa.Column("compose", sa.Text, nullable=False),  # the file the release deploys, kept
    sa.Column("files", sa.JSON, nullable=False),
    sa.Column("batches", sa.JSON, nullable=False),
    sa.Column("beta", sa.Boolean, nullable=False),
    sa.Column("pause_mode", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("next_batch", sa.Integer, nullable=False),
    sa.Column("batch_in_flight", sa.Boolean, nullable=False),
    sa.Column("closed", sa.Boolean, nullable=False, default=False),
    sa.Column("retries", sa.Integer, nullable=False, default=0),  # times failed instances reran
    sa.Column("rollback_of", sa.Integer, nullable=True),  # the release whose version it restores
    sa.Column("job_id", sa.Integer, nullable=True, unique=True),  # the deploy job that made it
    sa.Column("kind", sa.String(20), nullable=False, server_default="release"),
    sa.Column("handouts", sa.Integer, nullable=False, server_default="0"),  # batch tasks queued
    sa.Column("batch_runner", sa.String(255), nullable=True),  # who claimed the batch in flight
    sa.Column("batch_claimed_at", UtcDateTime, nullable=True),
    sa.Column("batch_handed_out_at", UtcDateTime, nullable=True),  # the batch in flight's
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime, nullable=True),
)

release_instances = sa.Table(
    "release_instances",
    metadata,
    sa.Column("release_id", sa.ForeignKey("releases.id"), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("batch", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("log", sa.Text, nullable=False),
)

gitlab_reports = sa.Table(
    "gitlab_reports",
    metadata,
    sa.Column("pipeline_id", sa.ForeignKey("pipelines.id"), primary_key=True),
    sa.Column("subject", sa.String(50), primary_key=True),  # "status", or "note:<job id>"
    sa.Column("for_status", sa.String(20), nullable=True),  # the pipeline status last reported
    sa.Column("sent", sa.String(20), nullable=True),  # what GitLab has: a state, or "sent"
    sa.Column("attempts", sa.Integer, nullable=False),  # failures since the last success
    sa.Column("next_attempt_at", UtcDateTime, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("target", sa.String(255), nullable=True),
    sa.Column("outcome", sa.String(100), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    # Where it happened, for filtering: derived from the target when it is recorded.
    sa.Column("project", sa.String(100), nullable=True, index=True),
    sa.Column("environment", sa.String(100), nullable=True),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("email", sa.String(255), nullable=True),
    sa.Column("password_hash", sa.String(255), nullable=True),  # argon2id; None: tokens only
    sa.Column("disabled_at", UtcDateTime, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

role_grants = sa.Table(
    "role_grants",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("role", sa.String(20), nullable=False),
    # None: the role is held for every project, present and future.
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=True),
    sa.UniqueConstraint("user_id", "role", "project_id", name="uq_role_grants"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    # SHA-256 of the token: tokens are 256 random bits, so a fast hash is safe here
    # (as GitLab does for personal access tokens); the token itself is never stored.
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=True),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
    sa.Column("last_used_at", UtcDateTime, nullable=True),
)

runner_tokens = sa.Table(
    "runner_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("runner", sa.String(255), nullable=False, index=True),  # the one runner it is for
    sa.Column("digest", sa.String(64), nullable=False, unique=True),  # SHA-256, as api_tokens
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
)

environment_protections = sa.Table(
    "environment_protections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("environment", sa.String(100), nullable=False),
    sa.Column("protected", sa.Boolean, nullable=False),  # False: unprotected on purpose
    sa.Column("approvals", sa.Integer, nullable=False),
    sa.Column("approver_role", sa.String(20), nullable=False),
    sa.Column("self_approval", sa.Boolean, nullable=False),
    sa.Column("valid_minutes", sa.Integer, nullable=True),
    sa.Column("verdict_from", sa.String(100), nullable=True),
    sa.Column("updated_by", sa.String(255), nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("project_id", "environment", name="uq_environment_protections"),
)

release_approvals = sa.Table(
    "release_approvals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("release_id", sa.Integer, sa.ForeignKey("releases.id"), nullable=False, index=True),
    sa.Column("user", sa.String(255), nullable=False),
    sa.Column("decision", sa.String(20), nullable=False),  # approve, reject
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
)

release_verdicts = sa.Table(
    "release_verdicts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("release_id", sa.Integer, sa.ForeignKey("releases.id"), nullable=False, index=True),
    sa.Column("user", sa.String(255), nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
)
