"""release kinds (release, rollback, restart) and who claimed the batch in flight

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.store.tables import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=20), nullable=False, server_default="release")
        )
        batch.add_column(sa.Column("handouts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("batch_runner", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("batch_claimed_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.drop_column("batch_claimed_at")
        batch.drop_column("batch_runner")
        batch.drop_column("handouts")
        batch.drop_column("kind")
