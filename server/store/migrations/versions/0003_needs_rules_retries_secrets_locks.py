"""needs, when, retries, secrets, environment locks, superseding, merge requests

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from server.store.tables import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_FALSE = sa.false()


def upgrade() -> None:
    op.add_column(
        "projects", sa.Column("supersede", sa.Boolean(), nullable=False, server_default=_FALSE)
    )
    op.add_column("pipelines", sa.Column("merge_request_iid", sa.Integer(), nullable=True))
    job_columns: list[sa.Column[Any]] = [
        sa.Column("kind", sa.String(length=20), nullable=False, server_default="script"),
        sa.Column("needs", sa.JSON(), nullable=True),
        sa.Column("when", sa.String(length=20), nullable=False, server_default="on_success"),
        sa.Column("allow_failure", sa.Boolean(), nullable=False, server_default=_FALSE),
        sa.Column("retry_max", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("retry_on", sa.JSON(), nullable=False, server_default="[]"),
        sa.Column("environment", sa.String(length=100), nullable=True),
        sa.Column("secrets", sa.JSON(), nullable=False, server_default="[]"),
        sa.Column("retried", sa.Boolean(), nullable=False, server_default=_FALSE),
        sa.Column("played_by", sa.String(length=255), nullable=True),
        sa.Column("failure_kind", sa.String(length=30), nullable=True),
    ]
    for column in job_columns:
        op.add_column("jobs", column)
    op.create_table(
        "secrets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_secrets_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secrets")),
        sa.UniqueConstraint(
            "project_id", "environment", "name", name=op.f("uq_secrets_project_id_environment_name")
        ),
    )
    op.create_table(
        "environment_locks",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("acquired_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_environment_locks_project_id_projects")
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_environment_locks_job_id_jobs")
        ),
        sa.PrimaryKeyConstraint("project_id", "environment", name=op.f("pk_environment_locks")),
    )


def downgrade() -> None:
    op.drop_table("environment_locks")
    op.drop_table("secrets")
    with op.batch_alter_table("jobs") as batch:
        for name in (
            "failure_kind",
            "played_by",
            "retried",
            "secrets",
            "environment",
            "retry_on",
            "retry_max",
            "allow_failure",
            "when",
            "needs",
            "kind",
        ):
            batch.drop_column(name)
    with op.batch_alter_table("pipelines") as batch:
        batch.drop_column("merge_request_iid")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("supersede")
