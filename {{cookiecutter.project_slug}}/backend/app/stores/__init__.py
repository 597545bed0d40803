"""Thread/item/attachment persistence behind chatkit's ``Store`` interface.

``DATABASE_URL`` picks the backend: ``memory://`` -> ``MemoryStore``; SQLite or
PostgreSQL URLs (plain or async-driver forms) -> ``SQLStore``.

    store = await open_store(settings.database_url)   # builds + start()s (migrates)
    ...
    await store.close()

``SQLStore`` (and with it SQLAlchemy) is imported on first use, so an app on the
memory store never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.sdk_fixes.full_uuid_ids import new_id
from app.stores.base import AppStore
from app.stores.memory import MemoryStore
from app.stores.urls import MEMORY_URL, normalize_database_url

if TYPE_CHECKING:
    from app.stores.sql import SQLStore


def build_store(database_url: str, **engine_options: Any) -> AppStore:
    """The store for ``database_url``, not started yet. Raises ``ValueError`` on bad URLs.

    ``engine_options`` are passed to SQLAlchemy's ``create_async_engine`` (SQL only).
    """
    url = normalize_database_url(database_url)
    if url == MEMORY_URL:
        return MemoryStore()
    from app.stores.sql import SQLStore

    return SQLStore(url, **engine_options)


async def open_store(database_url: str, **engine_options: Any) -> AppStore:
    """``build_store`` + ``await start()``; on failure the engine is disposed."""
    store = build_store(database_url, **engine_options)
    try:
        await store.start()
    except BaseException:
        await store.close()
        raise
    return store


def __getattr__(name: str) -> Any:
    if name == "SQLStore":
        from app.stores.sql import SQLStore

        return SQLStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AppStore",
    "MemoryStore",
    "SQLStore",
    "build_store",
    "new_id",
    "normalize_database_url",
    "open_store",
]
