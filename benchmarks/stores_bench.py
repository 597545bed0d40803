"""Store scaling on SQLite and PostgreSQL: page latency in a small thread (user) against a
large one, among a million rows of other users' data. Run by `benchmarks.__main__` in a
process of its own, from the generated backend's directory:

    python -m benchmarks.stores_bench --backend DIR --scratch DIR [--quick]

It prints one JSON object. The stores are the generated project's own `SQLStore`, its
schema made by its Alembic migration (`store.start()`); the rows are bulk-loaded with one
`INSERT ... SELECT` per table, interleaving the large user's rows with everyone else's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PG_DATABASE = "chatkit_bench"


@dataclass(frozen=True)
class Scale:
    other_threads: int  # other users' threads (10 per user)
    large_user_threads: int
    small_user_threads: int
    other_items: int  # items in other users' threads
    large_thread_items: int
    small_thread_items: int
    calls: int  # timed calls per figure


# A thread of exactly one history page (the server's HISTORY_LIMIT): against the large
# thread, both answers are the same size, so only the data size differs.
HISTORY_PAGE = 50

FULL = Scale(1_000_000, 100_000, 10, 1_000_000, 10_000, 10, 200)
QUICK = Scale(2_000, 200, 10, 2_000, 200, 10, 20)


def seq_sql(dialect: str, count: int) -> str:
    """A `FROM` giving rows i = 1..count."""
    if dialect == "postgresql":
        return f"generate_series(1, {count}) AS s(i)"
    return "s"


def with_series(dialect: str, count: int) -> str:
    if dialect == "postgresql":
        return ""
    return f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {count}) "


def json_template(kind: str) -> str:
    from chatkit.types import (
        InferenceOptions,
        ThreadMetadata,
        UserMessageItem,
        UserMessageTextContent,
    )

    moment = datetime(2025, 1, 1)
    if kind == "thread":
        return ThreadMetadata(id="__ID__", created_at=moment, title="Bench").model_dump_json()
    return UserMessageItem(
        id="__ID__",
        thread_id="__THREAD__",
        created_at=moment,
        content=[UserMessageTextContent(text="A message of a benchmark conversation.")],
        attachments=[],
        inference_options=InferenceOptions(),
    ).model_dump_json()


def quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def load_statements(dialect: str, scale: Scale) -> list[str]:
    """Bulk-load SQL: threads, then items, the large user's rows spread among the others'."""
    now = "'2025-01-01 00:00:00+00'" if dialect == "postgresql" else "'2025-01-01 00:00:00.000000'"
    thread_json, item_json = quoted(json_template("thread")), quoted(json_template("item"))
    cat = "||"
    # Threads: row i of 11 x large_user_threads goes to the large user when i % every == 0.
    every = (scale.other_threads + scale.large_user_threads) // scale.large_user_threads
    total = every * scale.large_user_threads
    users = scale.other_threads // 10  # about 10 threads per other user
    thread_owner = (
        f"CASE WHEN i % {every} = 0 THEN 'usr_large' ELSE 'usr_o_' {cat} (i % {users}) END"
    )
    statements = [
        with_series(dialect, total)
        + "INSERT INTO chatkit_threads (id, user_id, title, created_at, data) "
        + f"SELECT 'thr_' {cat} i, {thread_owner}, 'Bench', {now}, "
        + f"replace({thread_json}, '__ID__', 'thr_' {cat} i) FROM {seq_sql(dialect, total)}",
        # The small user's threads, and the two threads whose items are measured.
        with_series(dialect, scale.small_user_threads)
        + "INSERT INTO chatkit_threads (id, user_id, title, created_at, data) "
        + f"SELECT 'thr_small_' {cat} i, 'usr_small', 'Bench', {now}, "
        + f"replace({thread_json}, '__ID__', 'thr_small_' {cat} i) "
        + f"FROM {seq_sql(dialect, scale.small_user_threads)}",
        "INSERT INTO chatkit_threads (id, user_id, title, created_at, data) VALUES "
        + ", ".join(
            f"('{name}', 'usr_items', 'Bench', {now}, replace({thread_json}, '__ID__', '{name}'))"
            for name in ("thr_big", "thr_tiny", "thr_page")
        ),
    ]
    # Items: row i goes to the big thread when i % every_item == 0, otherwise to one of
    # the other users' threads (j = every * k + 1 is never the large user's).
    every_item = (scale.other_items + scale.large_thread_items) // scale.large_thread_items
    total_items = every_item * scale.large_thread_items
    other_thread = f"({every} * (i % {scale.large_user_threads}) + 1)"
    item_thread = (
        f"CASE WHEN i % {every_item} = 0 THEN 'thr_big' ELSE 'thr_' {cat} {other_thread} END"
    )
    item_owner = (
        f"CASE WHEN i % {every_item} = 0 THEN 'usr_items' "
        f"ELSE 'usr_o_' {cat} ({other_thread} % {users}) END"
    )
    statements += [
        with_series(dialect, total_items)
        + "INSERT INTO chatkit_items (id, thread_id, user_id, type, created_at, data) "
        + f"SELECT 'msg_' {cat} i, {item_thread}, {item_owner}, 'user_message', {now}, "
        + f"replace(replace({item_json}, '__ID__', 'msg_' {cat} i), '__THREAD__', {item_thread}) "
        + f"FROM {seq_sql(dialect, total_items)}",
        with_series(dialect, scale.small_thread_items)
        + "INSERT INTO chatkit_items (id, thread_id, user_id, type, created_at, data) "
        + f"SELECT 'msg_tiny_' {cat} i, 'thr_tiny', 'usr_items', 'user_message', {now}, "
        + f"replace(replace({item_json}, '__ID__', 'msg_tiny_' {cat} i), '__THREAD__', 'thr_tiny') "
        + f"FROM {seq_sql(dialect, scale.small_thread_items)}",
        with_series(dialect, HISTORY_PAGE)
        + "INSERT INTO chatkit_items (id, thread_id, user_id, type, created_at, data) "
        + f"SELECT 'msg_page_' {cat} i, 'thr_page', 'usr_items', 'user_message', {now}, "
        + f"replace(replace({item_json}, '__ID__', 'msg_page_' {cat} i), '__THREAD__', 'thr_page') "
        + f"FROM {seq_sql(dialect, HISTORY_PAGE)}",
    ]
    return statements


async def paired(calls: int, actions: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Median and p99 of each action, the actions taking turns call by call (in an order
    that rotates), so a burst of other work on the machine hits them all alike."""
    names = list(actions)
    for _ in range(max(3, calls // 10)):
        for name in names:
            await actions[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for index in range(calls):
        for name in names[index % len(names) :] + names[: index % len(names)]:
            started = time.perf_counter()
            await actions[name]()
            samples[name].append(time.perf_counter() - started)
    result = {}
    for name, values in samples.items():
        values.sort()
        index99 = min(len(values) - 1, round(0.99 * (len(values) - 1)))
        result[name] = {
            "median_ms": 1000 * values[len(values) // 2],
            "p99_ms": 1000 * values[index99],
        }
    return result


async def measure_store(url: str, scale: Scale) -> dict[str, Any]:
    from app.context import RequestContext
    from app.server import ChatServer
    from app.stores import open_store
    from app.stores.schema import items
    from app.stores.sql import items_page_query, threads_page_query
    from chatkit.types import InferenceOptions, UserMessageItem, UserMessageTextContent
    from sqlalchemy import select, text

    store = await open_store(url)
    try:
        engine = store.engine  # type: ignore[attr-defined]
        dialect = engine.dialect.name
        started = time.perf_counter()
        async with engine.begin() as conn:
            for statement in load_statements(dialect, scale):
                await conn.exec_driver_sql(statement)
        async with engine.connect() as conn:
            if dialect == "postgresql":
                await conn.execute(text("COMMIT"))
                await conn.execute(text("ANALYZE chatkit_threads"))
                await conn.execute(text("ANALYZE chatkit_items"))
            else:
                await conn.execute(text("ANALYZE"))
                await conn.commit()
        load_seconds = time.perf_counter() - started
        async with engine.connect() as conn:
            counts = {
                "threads": await conn.scalar(text("SELECT count(*) FROM chatkit_threads")),
                "items": await conn.scalar(text("SELECT count(*) FROM chatkit_items")),
                "large_user_threads": await conn.scalar(
                    text("SELECT count(*) FROM chatkit_threads WHERE user_id = 'usr_large'")
                ),
                "small_user_threads": await conn.scalar(
                    text("SELECT count(*) FROM chatkit_threads WHERE user_id = 'usr_small'")
                ),
                "large_thread_items": await conn.scalar(
                    text("SELECT count(*) FROM chatkit_items WHERE thread_id = 'thr_big'")
                ),
                "small_thread_items": await conn.scalar(
                    text("SELECT count(*) FROM chatkit_items WHERE thread_id = 'thr_tiny'")
                ),
            }
            middle_item = await conn.scalar(
                text(
                    "SELECT id FROM chatkit_items WHERE thread_id = 'thr_big' "
                    f"ORDER BY seq LIMIT 1 OFFSET {scale.large_thread_items // 2}"
                )
            )
            middle_thread = await conn.scalar(
                text(
                    "SELECT id FROM chatkit_threads WHERE user_id = 'usr_large' "
                    f"ORDER BY seq LIMIT 1 OFFSET {scale.large_user_threads // 2}"
                )
            )
            middle_seq = await conn.scalar(
                text(f"SELECT seq FROM chatkit_items WHERE id = '{middle_item}'")
            )

        items_user = RequestContext("usr_items")
        large, small = RequestContext("usr_large"), RequestContext("usr_small")
        server = ChatServer(store, None, None, HISTORY_PAGE)  # type: ignore[arg-type]
        big_meta = await store.load_thread("thr_big", items_user)
        tiny_meta = await store.load_thread("thr_tiny", items_user)
        page_meta = await store.load_thread("thr_page", items_user)

        # Pages as the widget asks: 20 newest first (chatkit's default page size).
        def page(thread: str, cursor: str | None) -> Any:
            return lambda: store.load_thread_items(thread, cursor, 20, "desc", items_user)

        cases: dict[str, dict[str, Any]] = {
            "items.list, newest page (20)": {
                "large": page("thr_big", None),
                "small": page("thr_tiny", None),
            },
            "items.list, page after a cursor (20)": {
                "large": page("thr_big", middle_item),
                "small": page("thr_tiny", "msg_tiny_5"),
            },
            "history in respond() (recent_items, 50)": {
                "large": lambda: server.recent_items(big_meta, items_user),
                "small": lambda: server.recent_items(tiny_meta, items_user),
            },
            "threads.list, first page (20)": {
                "large": lambda: store.load_threads(20, None, "desc", large),
                "small": lambda: store.load_threads(20, None, "desc", small),
            },
            "threads.list, page after a cursor (20)": {
                "large": lambda: store.load_threads(20, middle_thread, "desc", large),
                "small": lambda: store.load_threads(20, "thr_small_5", "desc", small),
            },
        }
        figures = {label: await paired(scale.calls, pair) for label, pair in cases.items()}
        # The history again, against a thread of one full page: equal answers.
        equal_answers = await paired(
            scale.calls,
            {
                "large": lambda: server.recent_items(big_meta, items_user),
                "small": lambda: server.recent_items(page_meta, items_user),
            },
        )
        # Before the unique-id lookup (benchmarks.undo): the cursor page again.
        with undone("unique-id-lookup"):
            before = await paired(scale.calls, cases["items.list, page after a cursor (20)"])

        # What the store changes save per call, in this process (less noisy than a server).
        def new_item() -> Any:
            return UserMessageItem(
                id=store.generate_item_id("message", tiny_meta, items_user),
                thread_id="thr_tiny",
                created_at=datetime.now(),
                content=[UserMessageTextContent(text="One more message.")],
                attachments=[],
                inference_options=InferenceOptions(),
            )

        calls = {
            "one-query-page": (
                "load_thread_items(thread, None, 50, 'desc'), as respond() does",
                lambda: store.load_thread_items("thr_tiny", None, 50, "desc", items_user),
            ),
            "prebuilt-upsert": (
                "add_thread_item (a new item)",
                lambda: store.add_thread_item("thr_tiny", new_item(), items_user),
            ),
        }
        per_call = {}
        for change, (label, action) in calls.items():

            async def before_change(action: Any = action, change: str = change) -> Any:
                with undone(change):
                    return await action()

            timings = await paired(scale.calls, {"now": action, "before": before_change})
            per_call[change] = {"call": label, **timings}
        cursor_lookup = select(items.c.seq, items.c.thread_id, items.c.user_id).where(
            items.c.id == middle_item
        )
        old_cursor_lookup = select(items.c.seq).where(
            items.c.id == middle_item,
            items.c.thread_id == "thr_big",
            items.c.user_id == "usr_items",
        )
        plans = {
            "items page: thread_id, user_id, newest first": items_page_query(
                "thr_big", "usr_items", None, 20, "desc"
            ),
            "items page after a cursor": items_page_query(
                "thr_big", "usr_items", int(middle_seq), 20, "desc"
            ),
            "cursor lookup (now): by unique id": cursor_lookup,
            "cursor lookup (before): id, thread_id, user_id": old_cursor_lookup,
            "threads page: user_id, newest first": threads_page_query(
                "usr_large", None, 20, "desc"
            ),
        }
        explained = {}
        async with engine.connect() as conn:
            for label, query in plans.items():
                explained[label] = await explain(conn, engine.dialect, query)
        version = await _server_version(engine)
        return {
            "dialect": dialect,
            "version": version,
            "load_seconds": load_seconds,
            "counts": counts,
            "figures": figures,
            "cursor_page_before_unique_id_lookup": before,
            "history_equal_answers": equal_answers,
            "per_call_before_after": per_call,
            "plans": explained,
            "calls": scale.calls,
        }
    finally:
        await store.close()


@contextlib.contextmanager
def undone(change: str) -> Iterator[None]:
    """Inside the block, the store runs with `change` undone (benchmarks.undo)."""
    from app.stores import sql

    from benchmarks.undo import CHANGES

    saved = dict(vars(sql.SQLStore))
    CHANGES[change].undo()
    try:
        yield
    finally:
        for name, value in vars(sql.SQLStore).copy().items():
            if saved.get(name) is not value and name in saved:
                setattr(sql.SQLStore, name, saved[name])


async def explain(conn: Any, dialect: Any, query: Any) -> dict[str, Any]:
    """The plan the database runs for the store's statement, with its bound values.

    PostgreSQL: asyncpg prepares every statement, and from a statement's sixth run on the
    server may switch to a generic plan, made without the values; that is the plan
    shown (`plan_cache_mode = force_generic_plan`), run with EXPLAIN ANALYZE.
    """
    compiled = query.compile(dialect=dialect)
    sql = str(compiled)
    names = list(compiled.positiontup or [])
    values = [compiled.params[name] for name in names]
    if dialect.name == "postgresql":

        def literal(value: Any) -> str:
            return str(value) if isinstance(value, int) else quoted(str(value))

        await conn.exec_driver_sql(f"PREPARE bench_plan AS {sql}")
        try:
            await conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
            arguments = ", ".join(literal(value) for value in values)
            rows = (
                await conn.exec_driver_sql(
                    "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
                    f"EXECUTE bench_plan({arguments})"
                )
            ).all()
        finally:
            await conn.exec_driver_sql("RESET plan_cache_mode")
            await conn.exec_driver_sql("DEALLOCATE bench_plan")
        plan = [row[0] for row in rows]
    else:
        rows = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, tuple(values))).all()
        plan = [row[-1] for row in rows]
    return {"sql": " ".join(sql.split()), "values": [str(value) for value in values], "plan": plan}


async def _server_version(engine: Any) -> str:
    from sqlalchemy import text

    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            return str(await conn.scalar(text("SHOW server_version")))
        return "SQLite " + str(await conn.scalar(text("SELECT sqlite_version()")))


async def fresh_postgres() -> str | None:
    """Create the benchmark database afresh; None when the server is not reachable."""
    import asyncpg

    try:
        admin = await asyncpg.connect(ADMIN_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        print(f"PostgreSQL not reachable at {ADMIN_URL}: {error}", file=sys.stderr)
        return None
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {PG_DATABASE}")
    finally:
        await admin.close()
    base = ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{PG_DATABASE}"


async def drop_postgres() -> None:
    import asyncpg

    admin = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
    finally:
        await admin.close()


async def main_async(scratch: Path, quick: bool) -> dict[str, Any]:
    scale = QUICK if quick else FULL
    results: dict[str, Any] = {"scale": scale.__dict__}
    sqlite_path = scratch / "stores-bench.db"
    sqlite_path.unlink(missing_ok=True)
    results["sqlite"] = await measure_store(f"sqlite+aiosqlite:///{sqlite_path}", scale)
    sqlite_path.unlink(missing_ok=True)
    pg_url = await fresh_postgres()
    if pg_url is None:
        results["postgres"] = {"skipped": f"PostgreSQL not reachable at {ADMIN_URL}"}
    else:
        try:
            results["postgres"] = await measure_store(pg_url, scale)
        finally:
            await drop_postgres()
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stores_bench")
    parser.add_argument("--backend", required=True)
    parser.add_argument("--scratch", required=True)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, args.backend)
    result = asyncio.run(main_async(Path(args.scratch), args.quick))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
