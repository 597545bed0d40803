"""Turn whatever ``DATABASE_URL`` a user pastes into the async driver URL we run on."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

MEMORY_URL = "memory://"

ACCEPTED_FORMS = (
    "memory:// (in-process, lost on restart), "
    "sqlite:///path/to/app.db or sqlite+aiosqlite:///path/to/app.db, "
    "postgresql://user:pass@host:5432/db, postgres://... "
    "or postgresql+asyncpg://user:pass@host:5432/db"
)

# Plain schemes people copy from hosting dashboards, mapped onto the async drivers.
_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def _unsupported(why: str) -> ValueError:
    # Never echo the URL itself: it usually carries a password.
    return ValueError(f"Unsupported DATABASE_URL: {why}. Accepted forms: {ACCEPTED_FORMS}")


def normalize_database_url(url: str) -> str:
    """Return ``memory://`` or an SQLAlchemy async URL (aiosqlite / asyncpg).

    Raises ``ValueError`` naming the accepted forms for anything else.
    """
    raw = url.strip()
    if raw in ("memory", "memory:", MEMORY_URL):
        return MEMORY_URL
    try:
        parsed = make_url(raw)
    except ArgumentError:
        raise _unsupported("not a database URL") from None

    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise _unsupported(f"scheme {parsed.drivername!r} is not supported")

    if driver == "sqlite+aiosqlite":
        if parsed.database in (None, "", ":memory:"):
            # Each pooled connection would get its own empty database.
            raise _unsupported("in-memory SQLite is not supported, use memory://")
    else:
        parsed = _asyncpg_query(parsed)
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def _asyncpg_query(url: URL) -> URL:
    # asyncpg calls libpq's ``sslmode`` ``ssl``; hosted Postgres URLs carry ``?sslmode=require``.
    if "sslmode" in url.query and "ssl" not in url.query:
        query = dict(url.query)
        query["ssl"] = query.pop("sslmode")
        url = url.set(query=query)
    return url


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def is_postgres(url: str) -> bool:
    return url.startswith("postgresql")
