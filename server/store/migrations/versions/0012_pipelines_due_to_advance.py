"""pipelines due to be advanced (the engine acts on what changed), planned indexed

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pipelines") as batch:
        # Every pipeline is due once after the upgrade: the engine looks at each.
        batch.add_column(
            sa.Column("advance_due", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("pipelines") as batch:
        batch.alter_column("advance_due", server_default=None)
    op.create_index("ix_pipelines_advance_due", "pipelines", ["advance_due"])
    op.create_index("ix_pipelines_planned", "pipelines", ["planned"])


def downgrade() -> None:
    op.drop_index("ix_pipelines_planned", "pipelines")
    op.drop_index("ix_pipelines_advance_due", "pipelines")
    with op.batch_alter_table("pipelines") as batch:
        batch.drop_column("advance_due")
