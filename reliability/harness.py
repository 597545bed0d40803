"""What every check stands on.

* `render_project`: a generated project (cookiecutter, no smoke test, no frontend).
* `FakeProvider`: the generated project's own loopback fake provider, in this process.
* `Backend`: the rendered backend as a real uvicorn subprocess, started with the flags
  of the project's Dockerfile CMD, its output captured to a log file, its resources
  (fds, sockets, threads, and asyncio tasks through reliability/probe.py) measurable.
* `Database`: a fresh SQLite file or PostgreSQL database per check, queried directly.
* `Browser` / `AsyncBrowser`: ChatKit over HTTP with a cookie jar; every response goes
  through the `Recorder`, which checks headers and looks for secrets in it.
* `free_port`: the template's one free-port helper (tests and benchmarks import it).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import httpx
import psutil

from tests import provider_table

TEMPLATE = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).with_name("probe.py")
SKIP_SMOKE_ENV = "CHATKIT_TEMPLATE_SKIP_SMOKE"
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
# Settings the backend reads from the environment: never inherited from the caller.
BACKEND_SETTINGS = (
    "PROJECT_NAME",
    "LLM_PROVIDER",
    "MODEL_NAME",
    "LLM_BASE_URL",
    "LLM_TIMEOUT_SECONDS",
    "LLM_MAX_RETRIES",
    *provider_table.KEY_VARIABLES,
    "DATABASE_URL",
    "HISTORY_LIMIT",
    "MAX_REQUEST_BYTES",
    "SESSION_SECRET",
    "SESSION_COOKIE_NAME",
    "SESSION_MAX_AGE_DAYS",
    "CORS_ORIGINS",
    "MCP_SERVER_URL",
    "MCP_TIMEOUT_SECONDS",
    "LOG_LEVEL",
    "ATTACHMENTS_ENABLED",
    "ATTACHMENT_STORAGE",
    "S3_ENDPOINT_URL",
    "ATTACHMENT_MAX_BYTES",
    "ATTACHMENT_TYPES",
    "ATTACHMENT_MAX_PER_MESSAGE",
    "HISTORY_IMAGE_LIMIT",
    "ATTACHMENT_TEXT_CHARS",
    "ATTACHMENT_ORPHAN_HOURS",
    "PUBLIC_URL",
)
COOKIE = "chatkit_session"

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from any context (a worker thread owns its loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


_ports_given: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on, never the same one twice in a process.

    The template's one copy: the tests, the benchmarks and this suite import it. The
    kernel picks the port; it may hand a closed one out again before its first taker
    has bound it (two servers started back to back), so those are skipped.
    """
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise RuntimeError("no new free loopback port after 100 tries")


def load_module(name: str, path: Path) -> ModuleType:
    """Import a file under a private name (the template's own `tests` package would clash)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# --- projects ------------------------------------------------------------------------


@dataclass(frozen=True)
class Project:
    store: str  # "sqlite" or "postgres"
    provider: str  # the rendered llm_provider
    root: Path

    @property
    def label(self) -> str:
        return {"sqlite": "SQLite", "postgres": "PostgreSQL"}[self.store]

    @property
    def backend_dir(self) -> Path:
        return self.root / "backend"

    @property
    def key_variable(self) -> str:
        return str(provider_table.PROVIDERS[self.provider].key_variable)

    def serve_flags(self) -> list[str]:
        """The uvicorn flags of the Dockerfile's CMD (the production command), minus the app."""
        for line in (self.backend_dir / "Dockerfile").read_text().splitlines():
            if line.startswith("CMD "):
                command = json.loads(line[4:])
                return command[command.index("app.main:app") + 1 :]
        raise RuntimeError("backend/Dockerfile has no CMD line")


def render_project(
    output_dir: Path, store: str, provider: str, template: Path = TEMPLATE
) -> Project:
    from cookiecutter.main import cookiecutter

    output_dir.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get(SKIP_SMOKE_ENV)
    os.environ[SKIP_SMOKE_ENV] = "1"
    try:
        root = cookiecutter(
            str(template),
            no_input=True,
            output_dir=str(output_dir),
            extra_context={
                "project_name": f"Reliability {store}",
                "store_backend": store,
                "llm_provider": provider,
                "frontend": "none",
                "run_smoke_test": False,
            },
        )
    finally:
        if previous is None:
            os.environ.pop(SKIP_SMOKE_ENV, None)
        else:
            os.environ[SKIP_SMOKE_ENV] = previous
    return Project(store=store, provider=provider, root=Path(root))


# --- databases -----------------------------------------------------------------------


def _asyncpg_dsn(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg_fetch(url: str, sql: str, *args: object) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=10)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


class Postgres:
    """Creates a database per check on one server; drops them all at the end."""

    def __init__(self, server_url: str) -> None:
        from sqlalchemy.engine import make_url

        self.server = make_url(server_url).set(drivername="postgresql+asyncpg")
        self.admin = self.server.set(database="postgres").render_as_string(hide_password=False)
        self.created: list[str] = []

    def version(self) -> str:
        rows = run_async(_pg_fetch(self.admin, "SHOW server_version"))
        return str(rows[0][0])

    def create(self) -> str:
        name = f"reliability_{uuid.uuid4().hex[:12]}"
        run_async(_pg_fetch(self.admin, f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.server.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        for name in self.created:
            with contextlib.suppress(Exception):
                run_async(_pg_fetch(self.admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.created.clear()


@dataclass
class Database:
    """One store's database, for the backend (`url`) and for direct queries."""

    kind: str
    url: str
    path: Path | None = None  # SQLite only

    def query(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        """`sql` with `$1`-style parameters (rewritten to `?` for SQLite)."""
        if self.kind == "sqlite":
            assert self.path is not None
            sqlite_sql = sql
            for index in range(len(args), 0, -1):
                sqlite_sql = sqlite_sql.replace(f"${index}", "?")
            with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as conn:
                return [tuple(row) for row in conn.execute(sqlite_sql, args).fetchall()]
        return [tuple(row) for row in run_async(_pg_fetch(self.url, sql, *args))]

    def items_of(self, thread_ids: list[str]) -> list[tuple[str, str, str]]:
        """(thread_id, item id, type) of every stored item in these threads, by seq."""
        rows: list[tuple[str, str, str]] = []
        for start in range(0, len(thread_ids), 200):
            batch = thread_ids[start : start + 200]
            if self.kind == "sqlite":
                marks = ",".join("?" * len(batch))
                assert self.path is not None
                with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as conn:
                    found = conn.execute(
                        "SELECT thread_id, id, type FROM chatkit_items "
                        f"WHERE thread_id IN ({marks}) ORDER BY seq",
                        batch,
                    ).fetchall()
            else:
                found = run_async(
                    _pg_fetch(
                        self.url,
                        "SELECT thread_id, id, type FROM chatkit_items "
                        "WHERE thread_id = ANY($1::text[]) ORDER BY seq",
                        batch,
                    )
                )
            rows.extend((str(r[0]), str(r[1]), str(r[2])) for r in found)
        return rows

    def user_rows(self, user_id: str) -> list[tuple[str, ...]]:
        """Every row a user owns, as text, in a stable order (to compare before/after)."""
        rows: list[tuple[str, ...]] = []
        for table in ("chatkit_threads", "chatkit_items", "chatkit_attachments"):
            found = self.query(
                f"SELECT id, data FROM {table} WHERE user_id = $1 ORDER BY id", user_id
            )
            rows.extend((table, str(r[0]), str(r[1])) for r in found)
        if self.has_table("chatkit_feedback"):  # migration 0004 on (not in older templates)
            found = self.query(
                "SELECT item_id, kind, rated_at FROM chatkit_feedback WHERE user_id = $1 "
                "ORDER BY item_id",
                user_id,
            )
            rows.extend(("chatkit_feedback", str(r[0]), f"{r[1]} {r[2]}") for r in found)
        return rows

    def has_table(self, name: str) -> bool:
        if self.kind == "sqlite":
            sql = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1"
            return bool(self.query(sql, name)[0][0])
        return self.query("SELECT to_regclass($1) IS NOT NULL", name)[0][0] is True

    def integrity(self) -> str:
        if self.kind == "sqlite":
            return str(self.query("PRAGMA integrity_check")[0][0])
        return "ok" if self.query("SELECT 1")[0][0] == 1 else "failed"


def new_database(kind: str, workdir: Path, postgres: Postgres) -> Database:
    if kind == "sqlite":
        path = workdir / f"db-{uuid.uuid4().hex[:8]}.db"
        return Database("sqlite", f"sqlite+aiosqlite:///{path}", path)
    return Database("postgres", postgres.create())


# --- secrets and the response recorder -----------------------------------------------


@dataclass
class Recorder:
    """Sees every HTTP response the suite receives from a backend."""

    secrets: dict[str, str]
    responses: int = 0
    without_nosniff: int = 0
    server_headers: Counter[str] = field(default_factory=Counter)
    leaks: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    error_events: int = 0
    tracebacks: int = 0  # responses or error events showing a Python stack trace
    examples: list[str] = field(default_factory=list)

    def record(self, status: int, headers: httpx.Headers, body: bytes, what: str) -> None:
        self.responses += 1
        self.statuses[status] += 1
        if headers.get("x-content-type-options", "").lower() != "nosniff":
            self.without_nosniff += 1
            self._example(f"{what}: HTTP {status} without X-Content-Type-Options: nosniff")
        for value in headers.get_list("server"):
            self.server_headers[value] += 1
        if b"Traceback (most recent call last)" in body or b'File "/' in body:
            self.tracebacks += 1
            self._example(f"{what}: HTTP {status} shows a stack trace")
        self.error_events += body.count(b'"type":"error"')
        raw_headers = "\n".join(f"{k}: {v}" for k, v in headers.multi_items()).encode()
        for name, secret in self.secrets.items():
            needle = secret.encode()
            if needle in body or needle in raw_headers:
                self.leaks[name] += 1
                self._example(f"{what}: {name} in an HTTP {status} response")

    def _example(self, text: str) -> None:
        if len(self.examples) < 20:
            self.examples.append(text)


# --- the backend process -------------------------------------------------------------


@dataclass
class Resources:
    """A backend process seen from outside (psutil) and through the SIGUSR1 probe."""

    fds: int
    threads: int
    tcp_to_provider: int
    tcp_to_postgres: int
    tcp_from_clients: int
    sqlite_files: int
    sqlite_connections: int  # handles on the database file itself (one per connection)
    other_fds: int  # fds that are none of the sockets and files above
    tasks: int
    task_names: dict[str, int]
    pool_checked_out: int
    pool_idle: int
    pool_size: int
    pool_max_overflow: int

    def as_dict(self) -> dict[str, int]:
        return {
            "fds": self.fds,
            "threads": self.threads,
            "asyncio tasks": self.tasks,
            "sockets to provider": self.tcp_to_provider,
            "sockets to PostgreSQL": self.tcp_to_postgres,
            "client sockets": self.tcp_from_clients,
            "SQLite files open": self.sqlite_files,
            "other fds": self.other_fds,
            "pool checked out": self.pool_checked_out,
            "pool idle": self.pool_idle,
        }


class BackendFailed(RuntimeError):
    pass


class Backend:
    """`with Backend(...) as backend:` the rendered app under uvicorn, on a loopback port."""

    def __init__(
        self,
        project: Project,
        database: Database,
        *,
        provider_url: str,
        api_key: str,
        session_secret: str,
        log_dir: Path,
        name: str,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.project = project
        self.database = database
        self.provider_url = provider_url
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.probe_path = log_dir / f"{name}.probe.json"
        env = {k: v for k, v in os.environ.items() if k not in BACKEND_SETTINGS}
        env.pop("RELIABILITY_PROBE_FILE", None)
        env.update(
            {
                "LLM_PROVIDER": project.provider,
                "LLM_BASE_URL": provider_url,
                project.key_variable: api_key,
                "DATABASE_URL": database.url,
                "SESSION_SECRET": session_secret,
                "MCP_SERVER_URL": "",
                "LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
                "RELIABILITY_PROBE_FILE": str(self.probe_path),
                # The checks attack faster than the default turn limits allow from one
                # IP (app/limits/); a role that tests the limits sets its own.
                "RATE_LIMIT_USER_TURNS_PER_MINUTE": "0",
                "RATE_LIMIT_IP_TURNS_PER_MINUTE": "0",
                "RATE_LIMIT_USER_TURNS_PER_DAY": "0",
                "RATE_LIMIT_IP_THREADS_PER_HOUR": "0",
                "RATE_LIMIT_USER_UPLOADS_PER_MINUTE": "0",
                "RATE_LIMIT_USER_UPLOAD_BYTES_PER_DAY": "0",
                **(extra_env or {}),
            }
        )
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        flags = self.project.serve_flags()
        for option, value in (("--host", "127.0.0.1"), ("--port", str(self.port))):
            if option in flags:
                flags[flags.index(option) + 1] = value
            else:
                flags += [option, value]
        return [sys.executable, str(PROBE), "app.main:app", *flags]

    def start(self, timeout: float = 60.0) -> Backend:
        self.launch()
        return self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process; `wait_ready` waits for /health."""
        self.port = free_port()
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start #{self.starts} on port {self.port}\n".encode())
            self.process = subprocess.Popen(
                self._command(),
                cwd=self.project.backend_dir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60.0) -> Backend:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BackendFailed(f"{self.name} exited at start:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise BackendFailed(f"{self.name} did not become healthy:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def health(self) -> int:
        try:
            return httpx.get(f"{self.url}/health", timeout=5).status_code
        except httpx.HTTPError:
            return 0

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill9()

    def __enter__(self) -> Backend:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # -- measuring from outside --------------------------------------------------------

    def probe(self, timeout: float = 5.0) -> dict[str, Any]:
        assert self.process is not None
        before = self.probe_path.stat().st_mtime_ns if self.probe_path.exists() else 0
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.probe_path.exists() and self.probe_path.stat().st_mtime_ns != before:
                with contextlib.suppress(ValueError):
                    return dict(json.loads(self.probe_path.read_text()))
            time.sleep(0.02)
        raise BackendFailed(f"{self.name} did not answer the probe")

    def resources(self) -> Resources:
        assert self.process is not None
        proc = psutil.Process(self.process.pid)
        provider_port = int(httpx.URL(self.provider_url).port or 0)
        to_provider = to_postgres = from_clients = 0
        for conn in proc.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN:
                continue
            remote = conn.raddr.port if conn.raddr else None
            if remote == provider_port:
                to_provider += 1
            elif remote == 5432:
                to_postgres += 1
            elif conn.laddr and conn.laddr.port == self.port:
                from_clients += 1
        sqlite_files = sqlite_connections = 0
        if self.database.path is not None:
            stem = str(self.database.path)
            paths = [f.path for f in proc.open_files()]
            sqlite_files = sum(1 for path in paths if path.startswith(stem))
            sqlite_connections = sum(1 for path in paths if path == stem)
        fds = proc.num_fds()
        probe = self.probe()
        pool = probe.get("pool") or {}
        return Resources(
            fds=fds,
            threads=proc.num_threads(),
            tcp_to_provider=to_provider,
            tcp_to_postgres=to_postgres,
            tcp_from_clients=from_clients,
            sqlite_files=sqlite_files,
            sqlite_connections=sqlite_connections,
            other_fds=fds - to_provider - to_postgres - from_clients - sqlite_files,
            tasks=int(probe["tasks"]),
            task_names=dict(probe.get("task_names") or {}),
            pool_checked_out=int(pool.get("checked_out", 0)),
            pool_idle=int(pool.get("idle", 0)),
            pool_size=int(pool.get("size", 0)),
            pool_max_overflow=int(pool.get("max_overflow", 0)),
        )


# --- the ChatKit protocol over HTTP --------------------------------------------------


def user_input(text: str) -> dict[str, Any]:
    return {
        "content": [{"type": "input_text", "text": text}],
        "attachments": [],
        "inference_options": {},
    }


@dataclass
class Reply:
    status: int
    body: bytes
    headers: httpx.Headers

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Turn:
    """What one streamed request produced (possibly cut short)."""

    status: int
    events: list[dict[str, Any]] = field(default_factory=list)
    body: bytes = b""
    broken: str = ""  # why reading stopped early (a dropped connection), if it did
    headers: httpx.Headers = field(default_factory=httpx.Headers)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event.get("type") == kind]

    @property
    def errors(self) -> list[dict[str, Any]]:
        return self.of_type("error")

    @property
    def thread_id(self) -> str:
        for event in self.events:
            if event.get("type") in ("thread.created", "thread.updated"):
                return str(event["thread"]["id"])
            if event.get("type") == "thread.item.done":
                return str(event["item"]["thread_id"])
        raise AssertionError(f"no thread in the events (HTTP {self.status}): {self.body[:300]!r}")

    @property
    def items_done(self) -> list[dict[str, Any]]:
        return [event["item"] for event in self.of_type("thread.item.done")]

    @property
    def user_item(self) -> dict[str, Any] | None:
        return next((i for i in self.items_done if i["type"] == "user_message"), None)

    @property
    def assistant_items(self) -> list[dict[str, Any]]:
        return [i for i in self.items_done if i["type"] == "assistant_message"]

    @property
    def reply_text(self) -> str:
        return "".join(p["text"] for item in self.assistant_items for p in item["content"])

    @property
    def deltas(self) -> int:
        return len(self.of_type("thread.item.updated"))


def parse_events(body: bytes) -> list[dict[str, Any]]:
    events = []
    for line in body.split(b"\n"):
        if line.startswith(b"data: "):
            with contextlib.suppress(ValueError):
                events.append(json.loads(line[6:]))
    return events


def session_cookie(cookies: httpx.Cookies) -> str | None:
    """The session cookie in a jar (the one the server set last, if there are several)."""
    values = [cookie.value for cookie in cookies.jar if cookie.name == COOKIE]
    return values[-1] if values else None


def set_session_cookie(cookies: httpx.Cookies, value: str) -> None:
    """Make `value` the jar's session cookie, as the server's own Set-Cookie would."""
    cookies.clear()
    cookies.set(COOKIE, value, domain="127.0.0.1", path="/")


def _payload(op: str, params: dict[str, Any]) -> bytes:
    return json.dumps({"type": op, "params": params}).encode()


class Browser:
    """One browser (one cookie jar) speaking ChatKit over real HTTP."""

    def __init__(self, base_url: str, recorder: Recorder, timeout: float = 60.0) -> None:
        self.recorder = recorder
        self.http = httpx.Client(base_url=base_url, timeout=timeout)

    def use(self, base_url: str) -> None:
        """Talk to another backend with the same cookies (round-robin, restarts)."""
        self.http.base_url = httpx.URL(base_url)

    @property
    def cookie(self) -> str | None:
        return session_cookie(self.http.cookies)

    def set_session(self, value: str) -> None:
        set_session_cookie(self.http.cookies, value)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def post(self, body: bytes | str, headers: dict[str, str] | None = None) -> Reply:
        data = body.encode() if isinstance(body, str) else body
        response = self.http.post(
            "/chatkit",
            content=data,
            headers={"content-type": "application/json", **(headers or {})},
        )
        self.recorder.record(
            response.status_code, response.headers, response.content, "POST /chatkit"
        )
        return Reply(response.status_code, response.content, response.headers)

    def request(self, op: str, **params: Any) -> Reply:
        return self.post(_payload(op, params))

    def stream(self, op: str, stop_after_deltas: int | None = None, **params: Any) -> Turn:
        """A streamed request; with `stop_after_deltas`, hang up after that many deltas."""
        body = bytearray()
        with self.http.stream(
            "POST",
            "/chatkit",
            content=_payload(op, params),
            headers={"content-type": "application/json"},
        ) as response:
            turn = Turn(status=response.status_code, headers=response.headers)
            try:
                for chunk in response.iter_raw():
                    body.extend(chunk)
                    if (
                        stop_after_deltas is not None
                        and body.count(b'"thread.item.updated"') >= stop_after_deltas
                    ):
                        turn.broken = "client hung up"
                        break
            except httpx.HTTPError as error:
                turn.broken = f"{type(error).__name__}: {error}"
            self.recorder.record(
                response.status_code, response.headers, bytes(body), f"{op} stream"
            )
        turn.body = bytes(body)
        turn.events = parse_events(turn.body)
        return turn

    def create_thread(self, text: str) -> Turn:
        return self.stream("threads.create", input=user_input(text))

    def send(self, thread_id: str, text: str) -> Turn:
        return self.stream("threads.add_user_message", thread_id=thread_id, input=user_input(text))

    def threads(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        after = None
        for _ in range(1000):
            params: dict[str, Any] = {"limit": 50, "order": "asc"}
            if after:
                params["after"] = after
            reply = self.request("threads.list", **params)
            if reply.status != 200:
                raise AssertionError(f"threads.list: HTTP {reply.status} {reply.body[:200]!r}")
            page = reply.json()
            found.extend(page["data"])
            if not page["has_more"]:
                return found
            after = page["after"]
        raise AssertionError("threads.list does not end")

    def items(self, thread_id: str, page_size: int = 17) -> list[dict[str, Any]]:
        """Every visible item of a thread, oldest first, walking the pages like the widget."""
        found: list[dict[str, Any]] = []
        after = None
        for _ in range(1000):
            params: dict[str, Any] = {"thread_id": thread_id, "limit": page_size, "order": "asc"}
            if after:
                params["after"] = after
            reply = self.request("items.list", **params)
            if reply.status != 200:
                raise AssertionError(f"items.list: HTTP {reply.status} {reply.body[:200]!r}")
            page = reply.json()
            found.extend(page["data"])
            if not page["has_more"]:
                return found
            after = page["after"]
        raise AssertionError("items.list does not end")


class AsyncBrowser:
    """`Browser` for asyncio: many conversations at once."""

    def __init__(self, base_url: str, recorder: Recorder, timeout: float = 120.0) -> None:
        self.recorder = recorder
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout)

    async def aclose(self) -> None:
        await self.http.aclose()

    @property
    def cookie(self) -> str | None:
        return session_cookie(self.http.cookies)

    def set_session(self, value: str) -> None:
        set_session_cookie(self.http.cookies, value)

    async def request(self, op: str, **params: Any) -> Reply:
        response = await self.http.post(
            "/chatkit", content=_payload(op, params), headers={"content-type": "application/json"}
        )
        self.recorder.record(response.status_code, response.headers, response.content, op)
        return Reply(response.status_code, response.content, response.headers)

    async def stream(self, op: str, **params: Any) -> Turn:
        body = bytearray()
        async with self.http.stream(
            "POST",
            "/chatkit",
            content=_payload(op, params),
            headers={"content-type": "application/json"},
        ) as response:
            turn = Turn(status=response.status_code)
            try:
                async for chunk in response.aiter_raw():
                    body.extend(chunk)
            except httpx.HTTPError as error:
                turn.broken = f"{type(error).__name__}: {error}"
            self.recorder.record(
                response.status_code, response.headers, bytes(body), f"{op} stream"
            )
        turn.body = bytes(body)
        turn.events = parse_events(turn.body)
        return turn

    async def items(self, thread_id: str, page_size: int = 17) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        after = None
        for _ in range(1000):
            params: dict[str, Any] = {"thread_id": thread_id, "limit": page_size, "order": "asc"}
            if after:
                params["after"] = after
            reply = await self.request("items.list", **params)
            if reply.status != 200:
                raise AssertionError(f"items.list: HTTP {reply.status} {reply.body[:200]!r}")
            page = reply.json()
            found.extend(page["data"])
            if not page["has_more"]:
                return found
            after = page["after"]
        raise AssertionError("items.list does not end")


def user_texts(items: list[dict[str, Any]]) -> list[str]:
    return [
        "".join(part.get("text", "") for part in item["content"])
        for item in items
        if item["type"] == "user_message"
    ]


def assistant_texts(items: list[dict[str, Any]]) -> list[str]:
    return [
        "".join(part.get("text", "") for part in item["content"])
        for item in items
        if item["type"] == "assistant_message"
    ]


def user_id_of(cookie: str | None) -> str | None:
    """The user id inside a `v1.<user_id>.<issued_at>.<signature>` session cookie."""
    if not cookie:
        return None
    parts = cookie.split(".")
    return parts[1] if len(parts) == 4 else None


@contextlib.contextmanager
def temporary(fake: Any, **settings: Any) -> Iterator[None]:
    """Set attributes on the fake provider for a block, then put them back."""
    before = {name: getattr(fake, name) for name in settings}
    for name, value in settings.items():
        setattr(fake, name, value)
    try:
        yield
    finally:
        for name, value in before.items():
            setattr(fake, name, value)
        fake.clear_faults()
