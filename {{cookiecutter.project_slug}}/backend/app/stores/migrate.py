"""Run the Alembic migrations to head from inside the application."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.stores.engine import SQLITE_WRITE_OPTION

# Resolved from the package, not the working directory, so an installed wheel migrates too.
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

# pg_advisory_xact_lock key (signed 64-bit) shared by every process migrating this schema.
MIGRATION_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"app.stores.migrations").digest()[:8], "big", signed=True
)


# ``alembic.context`` is a single process-wide proxy: two upgrades interleaving on one
# event loop (or running in two threads) would run on each other's connection and hang.
_IN_PROCESS = threading.Lock()


def alembic_config(connection: Connection | None = None) -> Config:
    """Config without alembic.ini; ``env.py`` uses ``attributes["connection"]`` when set."""
    config = Config()
    # Config values go through configparser interpolation, hence the escaping.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def take_migration_lock(connection: Connection) -> None:
    """Serialize concurrent migrators; released when the transaction ends.

    On Postgres an advisory lock: two app processes starting at once would otherwise
    both see an empty database and race on CREATE TABLE. SQLite needs nothing here:
    the migration transaction begins IMMEDIATE, which already excludes other writers.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


def _upgrade(connection: Connection) -> None:
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
        conn: AsyncConnection
        async with engine.connect() as conn:
            conn = await conn.execution_options(**{SQLITE_WRITE_OPTION: True})
            async with conn.begin():
                await conn.run_sync(_upgrade)
    finally:
        _IN_PROCESS.release()
