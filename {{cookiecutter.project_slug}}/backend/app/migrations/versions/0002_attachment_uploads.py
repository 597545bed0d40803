"""Attachment uploads: upload columns on chatkit_attachments, and the chunks table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

Hand-written and frozen: later schema changes go in new revisions, never here.
Existing attachments keep their rows: created_at is the upgrade's time (so the orphan
sweep gives them a full period), thread_id comes from their JSON (so attachments
already sent in a message stay bound and are never swept), and upload_id stays NULL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_attachments = sa.table(
    "chatkit_attachments",
    sa.column("id", sa.Text()),
    sa.column("data", sa.Text()),
    sa.column("thread_id", sa.Text()),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def _thread_of(data: str) -> str | None:
    try:
        thread_id = json.loads(data).get("thread_id")
    except (ValueError, AttributeError):
        return None
    return thread_id if isinstance(thread_id, str) else None


def upgrade() -> None:
    # Batch mode: SQLite cannot ALTER a column to NOT NULL, so it copies the table.
    with op.batch_alter_table("chatkit_attachments") as batch:
        batch.add_column(sa.Column("thread_id", sa.Text(), nullable=True))
        batch.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("upload_id", sa.Text(), nullable=True))
        batch.add_column(sa.Column("size", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("content_type", sa.Text(), nullable=True))

    bind = op.get_bind()
    now = datetime.now(UTC)
    bind.execute(sa.update(_attachments).values(created_at=now))
    rows = bind.execute(sa.select(_attachments.c.id, _attachments.c.data)).all()
    for attachment_id, data in rows:
        thread_id = _thread_of(data)
        if thread_id is not None:
            bind.execute(
                sa.update(_attachments)
                .where(_attachments.c.id == attachment_id)
                .values(thread_id=thread_id)
            )

    with op.batch_alter_table("chatkit_attachments") as batch:
        batch.alter_column("created_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.create_index(
            "ix_chatkit_attachments_thread_id_created_at", ["thread_id", "created_at"]
        )
        batch.create_index("ix_chatkit_attachments_upload_id", ["upload_id"])

    op.create_table(
        "chatkit_attachment_chunks",
        sa.Column("upload_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("attachment_id", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("upload_id", "seq", name="pk_chatkit_attachment_chunks"),
        sa.ForeignKeyConstraint(
            ["attachment_id"],
            ["chatkit_attachments.id"],
            name="fk_chatkit_attachment_chunks_attachment_id_chatkit_attachments",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_chatkit_attachment_chunks_attachment_id",
        "chatkit_attachment_chunks",
        ["attachment_id"],
    )
    op.create_index(
        "ix_chatkit_attachment_chunks_created_at",
        "chatkit_attachment_chunks",
        ["created_at"],
    )


def downgrade() -> None:
    # The bytes go (0001 had nowhere to keep them); the attachments' JSON rows stay.
    op.drop_index("ix_chatkit_attachment_chunks_created_at", table_name="chatkit_attachment_chunks")
    op.drop_index(
        "ix_chatkit_attachment_chunks_attachment_id", table_name="chatkit_attachment_chunks"
    )
    op.drop_table("chatkit_attachment_chunks")
    with op.batch_alter_table("chatkit_attachments") as batch:
        batch.drop_index("ix_chatkit_attachments_upload_id")
        batch.drop_index("ix_chatkit_attachments_thread_id_created_at")
        batch.drop_column("content_type")
        batch.drop_column("size")
        batch.drop_column("upload_id")
        batch.drop_column("created_at")
        batch.drop_column("thread_id")
