"""the audit log says in which project and environment each action happened

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("project", sa.String(100), nullable=True))
        batch.add_column(sa.Column("environment", sa.String(100), nullable=True))
        batch.create_index("ix_audit_log_project", ["project"])


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_index("ix_audit_log_project")
        batch.drop_column("environment")
        batch.drop_column("project")
