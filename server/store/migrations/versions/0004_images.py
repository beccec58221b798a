"""images built by pipelines; settings of built-in kinds of jobs

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.store.tables import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("settings", sa.JSON(), nullable=True))
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("repository", sa.String(length=500), nullable=False),
        sa.Column("tag", sa.String(length=128), nullable=False),
        sa.Column("digest", sa.String(length=100), nullable=False),
        sa.Column("middleware", sa.String(length=500), nullable=True),
        sa.Column("pushed_bytes", sa.BigInteger(), nullable=False),
        sa.Column("app_layer_bytes", sa.BigInteger(), nullable=True),
        sa.Column("runtime_mounts", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_images_job_id_jobs")),
        sa.ForeignKeyConstraint(
            ["pipeline_id"], ["pipelines.id"], name=op.f("fk_images_pipeline_id_pipelines")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
        sa.UniqueConstraint("job_id", name=op.f("uq_images_job_id")),
    )
    op.create_index(op.f("ix_images_pipeline_id"), "images", ["pipeline_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_images_pipeline_id"), table_name="images")
    op.drop_table("images")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("settings")
