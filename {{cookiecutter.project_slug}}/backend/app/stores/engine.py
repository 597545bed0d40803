"""Async engine construction, including the SQLite connection settings we depend on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from app.stores.urls import is_sqlite

SQLITE_BUSY_TIMEOUT_MS = 5000

# Execution option asking the SQLite ``begin`` hook for ``BEGIN IMMEDIATE``.
SQLITE_WRITE_OPTION = "chatkit_sqlite_immediate"


def create_engine(url: str, **engine_options: Any) -> AsyncEngine:
    """Create the engine for an already-normalized async URL."""
    sqlite = is_sqlite(url)
    # A server can drop idle connections (restart, failover); a local file cannot.
    options: dict[str, Any] = {"pool_pre_ping": not sqlite}
    options.update(engine_options)
    engine = create_async_engine(url, **options)
    if sqlite:
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take BEGIN away from the sqlite3 module (it skips it for SELECT/DDL) so the
        # ``begin`` hook below decides, and DDL in migrations is transactional.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # WAL: readers never block the writer and vice versa. Persistent per file.
            cursor.execute("PRAGMA journal_mode=WAL")
            # Wait for a competing writer (another process) instead of failing at once.
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            # Off by default in SQLite; the items -> threads ON DELETE CASCADE needs it.
            cursor.execute("PRAGMA foreign_keys=ON")
            # Safe with WAL (no corruption); only the last commits can be lost on power cut.
            cursor.execute("PRAGMA synchronous=NORMAL")
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
