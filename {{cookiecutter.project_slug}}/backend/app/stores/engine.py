"""Engine construction, including the SQLite connection settings we depend on."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

from app.stores.urls import is_sqlite

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

SQLITE_BUSY_TIMEOUT_MS = 5000

# Execution option asking the SQLite ``begin`` hook for ``BEGIN IMMEDIATE``.
SQLITE_WRITE_OPTION = "chatkit_sqlite_immediate"


def create_engine(url: str, **engine_options: Any) -> AsyncEngine:
    """Create the engine for an already-normalized async URL."""
    # Imported here: SQLAlchemy's asyncio extension imports its ORM, which the app never
    # needs unless it talks to the database through an async engine.
    from sqlalchemy.ext.asyncio import create_async_engine

    sqlite = is_sqlite(url)
    # A server can drop idle connections (restart, failover); a local file cannot.
    options: dict[str, Any] = {"pool_pre_ping": not sqlite}
    options.update(engine_options)
    engine = create_async_engine(url, **options)
    if sqlite:
        configure_sqlite(engine.sync_engine, SQLITE_BUSY_TIMEOUT_MS)
    return engine


def is_sqlite_busy(error: BaseException) -> bool:
    """SQLite's "database is locked": another connection holds the write lock."""
    if not isinstance(error, OperationalError) or not isinstance(
        error.orig, sqlite3.OperationalError
    ):
        return False
    code = getattr(error.orig, "sqlite_errorcode", 0) & 0xFF  # the primary of an extended code
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def configure_sqlite(sync_engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take BEGIN away from the sqlite3 module (it skips it for SELECT/DDL) so the
        # ``begin`` hook below decides, and DDL in migrations is transactional.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # Wait for a competing writer (another process) instead of failing at once;
            # 0 on the inline engine, whose caller waits with asyncio sleeps instead.
            cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
            # Off by default in SQLite; the items -> threads ON DELETE CASCADE needs it.
            cursor.execute("PRAGMA foreign_keys=ON")
            # Safe with WAL (no corruption); only the last commits can be lost on power cut.
            cursor.execute("PRAGMA synchronous=NORMAL")
            # WAL: readers never block the writer and vice versa. It is stored in the file,
            # so this is a no-op once set; ensure_sqlite_wal() (run by start()) sets it
            # for sure, since this switch fails at once while another process writes.
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError as error:
                if "locked" not in str(error):
                    raise
        finally:
            cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front. A deferred transaction that reads and
        # then writes cannot wait on busy_timeout when another writer got in first:
        # it fails with "database is locked" (SQLITE_BUSY_SNAPSHOT).
        if conn.get_execution_options().get(SQLITE_WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


async def ensure_sqlite_wal(path: str, timeout_s: float = 30.0) -> None:
    """Put the database file in WAL mode, waiting out other processes' writes.

    Switching a rollback-journal file to WAL needs it to itself, and SQLite reports
    "database is locked" at once instead of invoking busy_timeout: hence the retry,
    which matters when several workers boot together on a fresh file.
    """
    import aiosqlite

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            async with aiosqlite.connect(path) as db:
                async with db.execute("PRAGMA journal_mode=WAL") as cursor:
                    row = await cursor.fetchone()
            if row is None or str(row[0]).lower() != "wal":
                raise RuntimeError(f"SQLite refused WAL mode for {path}: {row}")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
