"""Table definitions the SQL store queries against.

The DDL itself ships as Alembic migrations (``app/migrations/versions``); a test
checks that a migrated database matches this metadata exactly.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)

# SQLite only makes ``INTEGER PRIMARY KEY`` the rowid; BIGINT would not autoincrement.
SeqType = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# ``seq`` is the pagination key: an always-increasing identity that upserts never change
# (AUTOINCREMENT on SQLite so values of deleted rows are not reused).
threads = Table(
    "chatkit_threads",
    metadata,
    Column("seq", SeqType, Identity(), primary_key=True),
    Column("id", Text, nullable=False, unique=True),
    Column("user_id", Text, nullable=False),
    Column("title", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("data", Text, nullable=False),  # ThreadMetadata.model_dump_json()
    Index(None, "user_id", "seq"),
    sqlite_autoincrement=True,
)

items = Table(
    "chatkit_items",
    metadata,
    Column("seq", SeqType, Identity(), primary_key=True),
    Column("id", Text, nullable=False, unique=True),
    Column(
        "thread_id",
        Text,
        ForeignKey(threads.c.id, ondelete="CASCADE"),
        nullable=False,
    ),
    Column("user_id", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("data", Text, nullable=False),  # ThreadItem.model_dump_json()
    # Serves the page query (thread_id = ? AND user_id = ? ORDER BY seq) and the FK cascade.
    Index(None, "thread_id", "user_id", "seq"),
    sqlite_autoincrement=True,
)

# ChatKit's JSON plus the columns the store decides on: who may read the bytes
# (upload_id: the finished upload, NULL before), and which thread it was first sent in.
attachments = Table(
    "chatkit_attachments",
    metadata,
    Column("id", Text, primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("data", Text, nullable=False),  # Attachment.model_dump_json()
    Column("thread_id", Text, nullable=True),  # no FK: delete_thread deletes these itself
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("upload_id", Text, nullable=True),
    Column("size", BigInteger, nullable=True),
    Column("content_type", Text, nullable=True),  # sniffed from the bytes
    # delete_thread (thread_id = ?) and the orphan sweep (thread_id IS NULL AND created_at < ?).
    Index(None, "thread_id", "created_at"),
    # discard_upload: is this upload id an attachment's finished one?
    Index(None, "upload_id"),
)

# The bytes, CHUNK_BYTES (256 KiB) a row, each row committed on its own while the
# upload streams. Readable only through an attachment whose upload_id names them.
attachment_chunks = Table(
    "chatkit_attachment_chunks",
    metadata,
    Column("upload_id", Text, nullable=False),
    Column("seq", Integer, nullable=False),
    Column(
        "attachment_id",
        Text,
        ForeignKey(attachments.c.id, ondelete="CASCADE"),
        nullable=False,
    ),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("upload_id", "seq"),
    Index(None, "attachment_id"),  # deletes by attachment, and the FK cascade
    Index(None, "created_at"),  # the sweep of unfinished uploads
)

# Rate-limit and usage counters (app/limits/): one row per key and fixed time window,
# added to with one atomic upsert, so replicas on one database share their limits.
counters = Table(
    "chatkit_counters",
    metadata,
    Column("key", Text, nullable=False),
    Column("window_start", BigInteger, nullable=False),  # Unix seconds
    Column("count", BigInteger, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("key", "window_start"),
    Index(None, "expires_at"),  # delete_expired_counters
)

# Thumbs up/down (``items.feedback``): one row per rating user and item, holding the
# latest kind and when it was given; a second click on the item changes the row.
# An item belongs to one thread and one user, so the key is that item's, with the
# user and thread in front for the per-thread reads and deletes.
feedback = Table(
    "chatkit_feedback",
    metadata,
    Column("user_id", Text, nullable=False),
    Column("thread_id", Text, nullable=False),
    Column(
        "item_id",
        Text,
        ForeignKey(items.c.id, ondelete="CASCADE"),
        nullable=False,
    ),
    Column("kind", Text, nullable=False),  # "positive" or "negative" (chatkit's FeedbackKind)
    Column("rated_at", DateTime(timezone=True), nullable=False),  # the latest click, UTC
    PrimaryKeyConstraint("user_id", "thread_id", "item_id"),
    Index(None, "item_id"),  # the FK cascade when an item goes (a retried reply)
    Index(None, "rated_at"),  # the README's reports: the ratings of the last days
)
