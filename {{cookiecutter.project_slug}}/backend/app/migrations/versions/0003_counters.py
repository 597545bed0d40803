"""Counters for the abuse and cost limits (app/limits/): chatkit_counters.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

Hand-written and frozen: later schema changes go in new revisions, never here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chatkit_counters",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start", name="pk_chatkit_counters"),
    )
    op.create_index("ix_chatkit_counters_expires_at", "chatkit_counters", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_chatkit_counters_expires_at", table_name="chatkit_counters")
    op.drop_table("chatkit_counters")
