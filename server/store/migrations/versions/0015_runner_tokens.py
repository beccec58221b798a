"""a token per runner, revocable, that speaks only for that runner

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.store.tables import UtcDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runner_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("runner", sa.String(255), nullable=False, index=True),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("revoked_at", UtcDateTime, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("runner_tokens")
