"""Database URLs and started stores for every backend, for the store and app tests.

* ``STORE_KINDS`` / ``database_url_for(kind, tmp_path)``: a URL for one test
  (``memory://``, a SQLite file in ``tmp_path``, or a fresh PostgreSQL database).
* ``open_backend(kind, tmp_path)`` / ``emptied_postgres_backend(url)``: a
  ``StoreBackend`` to open (and re-open) stores on, for test_store_contract.py.

PostgreSQL: ``TEST_DATABASE_URL`` (default below) names a server and a role allowed to
CREATE DATABASE. Each ``database_url_for`` use gets its own database, dropped
afterwards; the store contract tests share one per session and empty it before each
test. Runs are independent and repeatable. An unreachable server FAILS the postgres
tests with instructions; it never skips them.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from app.stores import AppStore, SQLStore, build_store, normalize_database_url
from app.stores.schema import metadata

DEFAULT_TEST_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
STORE_KINDS = ("memory", "sqlite", "postgres")
SQL_STORE_KINDS = ("sqlite", "postgres")

HOW_TO_START_POSTGRES = (
    "Start the local server with "
    "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, "
    "or set TEST_DATABASE_URL to a PostgreSQL database whose role may CREATE DATABASE "
    "(e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test)."
)

_postgres_error: list[str] = []  # one dead server costs one connect timeout per session

T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    # In a worker thread, so it works from sync fixtures and inside a running loop alike.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def postgres_server_url() -> str:
    return normalize_database_url(os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL))


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty database on the test server; dropped (connections and all) on exit."""
    if _postgres_error:
        pytest.fail(_postgres_error[0], pytrace=False)
    server = postgres_server_url()
    name = f"store_test_{uuid.uuid4().hex[:16]}"
    try:
        _run(_admin(server, f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        safe = make_url(server).render_as_string(hide_password=True)
        _postgres_error.append(
            f"PostgreSQL is not usable at {safe} ({type(exc).__name__}: {exc}). "
            + HOW_TO_START_POSTGRES
        )
    if _postgres_error:  # failed outside the except block: no chained traceback
        pytest.fail(_postgres_error[0], pytrace=False)
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        _run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def database_url_for(kind: str, tmp_path: Path) -> Iterator[str]:
    """A DATABASE_URL for one test: ``kind`` is one of ``STORE_KINDS``."""
    if kind == "memory":
        yield "memory://"
    elif kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    elif kind == "postgres":
        with postgres_database() as url:
            yield url
    else:
        raise ValueError(f"unknown store kind {kind!r}; expected one of {STORE_KINDS}")


@dataclass
class StoreBackend:
    """One storage location; ``open()`` builds and starts a store on it (again = restart)."""

    kind: str
    url: str
    opened: list[AppStore] = field(default_factory=list)

    def build(self) -> AppStore:
        store = build_store(self.url)
        self.opened.append(store)
        return store

    async def open(self) -> AppStore:
        store = self.build()
        await store.start()
        return store

    async def close_all(self) -> None:
        for store in self.opened:
            await store.close()


_migrated: set[str] = set()


async def emptied_postgres_backend(url: str) -> StoreBackend:
    """A backend on a database shared by many tests: migrated, with every row removed.

    Far cheaper than a fresh database per test; isolation comes from emptying it first.
    """
    store = build_store(url)
    try:
        if url not in _migrated:
            await store.start()
            _migrated.add(url)
        assert isinstance(store, SQLStore)
        async with store.engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):  # children first
                await conn.execute(table.delete())
    finally:
        await store.close()
    return StoreBackend("postgres", url)


@asynccontextmanager
async def open_backend(kind: str, tmp_path: Path) -> AsyncIterator[StoreBackend]:
    """A ``StoreBackend`` on a fresh location; closes its stores before dropping the data."""
    with database_url_for(kind, tmp_path) as url:
        backend = StoreBackend(kind, url)
        try:
            yield backend
        finally:
            await backend.close_all()
