"""what was reported to GitLab: commit statuses and merge-request notes

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.store.tables import UtcDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gitlab_reports",
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=50), nullable=False),
        sa.Column("for_status", sa.String(length=20), nullable=True),
        sa.Column("sent", sa.String(length=20), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"], ["pipelines.id"], name=op.f("fk_gitlab_reports_pipeline_id_pipelines")
        ),
        sa.PrimaryKeyConstraint("pipeline_id", "subject", name=op.f("pk_gitlab_reports")),
    )


def downgrade() -> None:
    op.drop_table("gitlab_reports")
