"""deployment configurations, versioned; host ports allocated to instances

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.store.tables import UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deploy_configs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_deploy_configs_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deploy_configs")),
        sa.UniqueConstraint(
            "project_id",
            "environment",
            "version",
            name=op.f("uq_deploy_configs_project_id_environment_version"),
        ),
    )
    op.create_table(
        "port_allocations",
        sa.Column("host_port", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column("instance", sa.Integer(), nullable=False),
        sa.Column("container_port", sa.Integer(), nullable=False),
        sa.Column("allocated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_port_allocations_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("host_port", name=op.f("pk_port_allocations")),
        sa.UniqueConstraint(
            "project_id",
            "environment",
            "instance",
            "container_port",
            name=op.f("uq_port_allocations_project_id_environment_instance_container_port"),
        ),
    )


def downgrade() -> None:
    op.drop_table("port_allocations")
    op.drop_table("deploy_configs")
