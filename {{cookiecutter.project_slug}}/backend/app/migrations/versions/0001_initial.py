"""Threads, thread items and attachments for the chatkit store.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Hand-written and frozen: later schema changes go in new revisions, never here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT identity on Postgres; SQLite needs INTEGER PRIMARY KEY to alias the rowid.
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "chatkit_threads",
        sa.Column("seq", _SEQ, sa.Identity(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_chatkit_threads"),
        sa.UniqueConstraint("id", name="uq_chatkit_threads_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_chatkit_threads_user_id_seq", "chatkit_threads", ["user_id", "seq"])

    op.create_table(
        "chatkit_items",
        sa.Column("seq", _SEQ, sa.Identity(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("thread_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_chatkit_items"),
        sa.UniqueConstraint("id", name="uq_chatkit_items_id"),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["chatkit_threads.id"],
            name="fk_chatkit_items_thread_id_chatkit_threads",
            ondelete="CASCADE",
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_chatkit_items_thread_id_user_id_seq",
        "chatkit_items",
        ["thread_id", "user_id", "seq"],
    )

    op.create_table(
        "chatkit_attachments",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chatkit_attachments"),
    )


def downgrade() -> None:
    op.drop_table("chatkit_attachments")
    op.drop_index("ix_chatkit_items_thread_id_user_id_seq", table_name="chatkit_items")
    op.drop_table("chatkit_items")
    op.drop_index("ix_chatkit_threads_user_id_seq", table_name="chatkit_threads")
    op.drop_table("chatkit_threads")
