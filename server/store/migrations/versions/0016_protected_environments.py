"""protected environments, the approvals of releases to them, testers' verdicts

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.store.tables import UtcDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "environment_protections",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("protected", sa.Boolean, nullable=False),
        sa.Column("approvals", sa.Integer, nullable=False),
        sa.Column("approver_role", sa.String(20), nullable=False),
        sa.Column("self_approval", sa.Boolean, nullable=False),
        sa.Column("valid_minutes", sa.Integer, nullable=True),
        sa.Column("verdict_from", sa.String(100), nullable=True),
        sa.Column("updated_by", sa.String(255), nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("project_id", "environment", name="uq_environment_protections"),
    )
    op.create_table(
        "release_approvals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "release_id", sa.Integer, sa.ForeignKey("releases.id"), nullable=False, index=True
        ),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
    )

    op.create_table(
        "release_verdicts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "release_id", sa.Integer, sa.ForeignKey("releases.id"), nullable=False, index=True
        ),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("release_verdicts")
    op.drop_table("release_approvals")
    op.drop_table("environment_protections")
