"""when a job became pending and when a release's batch was handed out (stuck rule)

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.store.tables import UtcDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("queued_at", UtcDateTime(), nullable=True))
    with op.batch_alter_table("releases") as batch:
        batch.add_column(sa.Column("batch_handed_out_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.drop_column("batch_handed_out_at")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("queued_at")
