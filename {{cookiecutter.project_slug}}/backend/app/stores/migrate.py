"""Run the Alembic migrations to head from inside the application.

Alembic (and the SQLAlchemy ORM it imports) loads only when a database is behind:
``schema_at_head`` asks the version table first, one query.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from app.stores.engine import SQLITE_WRITE_OPTION, is_sqlite_busy

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# Resolved from the package, not the working directory, so an installed wheel migrates too.
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

# The newest revision in migrations/versions: a new migration updates it (a test checks).
HEAD_REVISION = "0004"
VERSION_TABLE = "alembic_version"  # Alembic's default
# How long a start waits for another process migrating the same SQLite file.
MIGRATION_WAIT_SECONDS = 120.0

# pg_advisory_xact_lock key (signed 64-bit) shared by every process migrating this schema.
MIGRATION_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"app.stores.migrations").digest()[:8], "big", signed=True
)


# ``alembic.context`` is a single process-wide proxy: two upgrades interleaving on one
# event loop (or running in two threads) would run on each other's connection and hang.
_IN_PROCESS = threading.Lock()


def alembic_config(connection: Connection | None = None) -> Config:
    """Config without alembic.ini; ``env.py`` uses ``attributes["connection"]`` when set."""
    from alembic.config import Config

    config = Config()
    # Config values go through configparser interpolation, hence the escaping.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def is_at_head(connection: Connection) -> bool:
    """Whether the schema is at ``HEAD_REVISION``; False when in doubt (then Alembic decides)."""
    try:
        if not inspect(connection).has_table(VERSION_TABLE):
            return False
        versions = connection.execute(text("SELECT version_num FROM alembic_version"))
        return list(versions.scalars()) == [HEAD_REVISION]
    except OperationalError as error:
        if is_sqlite_busy(error):  # a migrator elsewhere is busy: let Alembic wait for it
            return False
        raise


async def schema_at_head(engine: Engine | AsyncEngine) -> bool:
    """``is_at_head`` on a connection of ``engine`` (sync engines run on the loop: SQLite)."""
    if isinstance(engine, Engine):
        with engine.connect() as sync_connection:
            return is_at_head(sync_connection)
    async with engine.connect() as connection:
        return await connection.run_sync(is_at_head)


def take_migration_lock(connection: Connection) -> None:
    """Serialize concurrent migrators; released when the transaction ends.

    On Postgres an advisory lock: two app processes starting at once would otherwise
    both see an empty database and race on CREATE TABLE. SQLite needs nothing here:
    the migration transaction begins IMMEDIATE, which already excludes other writers.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


def _upgrade(connection: Connection) -> None:
    from alembic import command

    take_migration_lock(connection)
    command.upgrade(alembic_config(connection), "head")


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Migrate to head in one transaction (DDL is transactional on both backends).

    A no-op when already at head, so every start may call it. Lock order: this
    process's lock, then the database's, then Alembic.
    """
    # A thread lock, as event loops may differ; polling keeps this loop free and stays
    # correct if the task is cancelled (a blocking acquire in a worker thread would not).
    while not _IN_PROCESS.acquire(blocking=False):  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    try:
        # Loaded before the transaction: the write lock is not held while Python imports.
        from alembic import command  # noqa: F401

        deadline = time.monotonic() + MIGRATION_WAIT_SECONDS
        while True:
            try:
                await _upgrade_once(engine)
                return
            except OperationalError as error:
                # Another process is migrating this SQLite file and holds its write lock
                # past busy_timeout (two revisions on a loaded machine): wait for it, then
                # find the database at head and do nothing.
                if not is_sqlite_busy(error) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.1)
    finally:
        _IN_PROCESS.release()


async def _upgrade_once(engine: AsyncEngine) -> None:
    conn: AsyncConnection
    async with engine.connect() as conn:
        conn = await conn.execution_options(**{SQLITE_WRITE_OPTION: True})
        async with conn.begin():
            await conn.run_sync(_upgrade)
