"""Thumbs up/down on thread items (``items.feedback``): chatkit_feedback.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

Hand-written and frozen: later schema changes go in new revisions, never here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chatkit_feedback",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("thread_id", sa.Text(), nullable=False),
        sa.Column("item_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "thread_id", "item_id", name="pk_chatkit_feedback"),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["chatkit_items.id"],
            name="fk_chatkit_feedback_item_id_chatkit_items",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_chatkit_feedback_item_id", "chatkit_feedback", ["item_id"])
    op.create_index("ix_chatkit_feedback_rated_at", "chatkit_feedback", ["rated_at"])


def downgrade() -> None:
    op.drop_index("ix_chatkit_feedback_rated_at", table_name="chatkit_feedback")
    op.drop_index("ix_chatkit_feedback_item_id", table_name="chatkit_feedback")
    op.drop_table("chatkit_feedback")
