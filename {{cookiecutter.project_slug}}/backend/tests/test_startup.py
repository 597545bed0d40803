"""Start-up: configuration mistakes stop the backend with one line that names the fix,
importing the app needs no settings, and start-up loads only what it uses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.config import ConfigError, load_settings
from app.provider_table import PROVIDERS
from app.providers import resolve_provider
from app.stores.migrate import HEAD_REVISION, alembic_config

BACKEND = Path(__file__).resolve().parents[1]
# The ways the README, the Makefile, the Dockerfile and tools build the app.
ENTRY_POINTS = {
    "app.main:app": "from app.main import app",
    "--factory app.main:create_app": "from app.main import create_app; create_app()",
}


def backend_env(**env: str) -> dict[str, str]:
    """This process's environment, with the settings a test names and no provider key."""
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return {
        **clean,
        "DATABASE_URL": "memory://",
        "SESSION_SECRET": "s" * 40,
        "MCP_SERVER_URL": "",
        **env,
    }


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=BACKEND,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_missing_key_stops_the_process_with_one_line(entry_point: str) -> None:
    env = backend_env(LLM_PROVIDER="openrouter", LLM_BASE_URL="", OPENROUTER_API_KEY="")
    result = run_python(ENTRY_POINTS[entry_point], env)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Configuration error: OPENROUTER_API_KEY is not set: LLM_PROVIDER=openrouter needs it. "
        "Add OPENROUTER_API_KEY=... to .env (see .env.example)."
    )


@pytest.mark.parametrize("provider", [name for name, row in PROVIDERS.items() if row.key_required])
def test_missing_key_is_named(provider: str) -> None:
    settings = load_settings(
        _env_file=None,
        llm_provider=provider,
        llm_base_url="http://127.0.0.1:9/v1",
        session_secret="s" * 40,
        **{PROVIDERS[provider].key_variable.lower(): ""},
    )
    with pytest.raises(ConfigError, match=f"{PROVIDERS[provider].key_variable} is not set"):
        resolve_provider(settings)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"session_secret": "short"}, "SESSION_SECRET is missing or shorter than 32"),
        ({"model_name": "litellm/gpt-5.1"}, "MODEL_NAME=gpt-5.1"),
        ({"model_name": " "}, "MODEL_NAME is empty"),
        ({"cors_origins": "*"}, "CORS_ORIGINS must list origins"),
        ({"llm_provider": "openai_compatible", "llm_base_url": ""}, "LLM_BASE_URL is required"),
        ({"database_url": "mysql://x/y"}, "DATABASE_URL"),
    ],
)
def test_bad_settings_name_the_variable(overrides: dict[str, str], message: str) -> None:
    values = {
        "_env_file": None,
        # Pinned: the rendered default provider may need a key these values do not give.
        "llm_provider": "openai",
        "session_secret": "s" * 40,
        "openai_api_key": "k",
        "llm_api_key": "k",
    } | overrides
    with pytest.raises((ConfigError, ValueError), match=message):
        settings = load_settings(**values)
        resolve_provider(settings)
        from app.stores import build_store

        build_store(settings.database_url)


def test_keyless_providers_start_without_a_key() -> None:
    settings = load_settings(
        _env_file=None,
        llm_provider="ollama",
        session_secret="s" * 40,
        llm_base_url="",
        llm_api_key=None,
    )
    resolved = resolve_provider(settings)
    assert resolved.base_url == "http://localhost:11434/v1"
    assert resolved.api_key == "not-needed"
    assert not resolved.exports_traces


@pytest.fixture
def uvicorn_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """`uvicorn <entry point>` on a free loopback port; yields its base URL."""
    env = backend_env(
        LLM_PROVIDER="openai",
        OPENAI_API_KEY="test-key",
        LLM_BASE_URL="http://127.0.0.1:9/v1",
        DATABASE_URL=f"sqlite:///{tmp_path / 'app.db'}",
        OPENAI_AGENTS_DISABLE_TRACING="1",
    )
    command = [sys.executable, "-m", "uvicorn", *request.param.split(), "--port", "0"]
    process = subprocess.Popen(
        command, cwd=BACKEND, env=env, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:
            found = re.search(r"Uvicorn running on (http://\S+)", line)
            if found:
                yield found.group(1)
                return
        pytest.fail(f"uvicorn exited with {process.wait()} before serving")
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize("uvicorn_backend", ENTRY_POINTS, indirect=True)
def test_uvicorn_serves_the_app(uvicorn_backend: str) -> None:
    response = httpx.get(f"{uvicorn_backend}/health", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


# What the app must not load unless it uses it: migrations (Alembic, and with it Mako,
# pygments and SQLAlchemy's ORM), the asyncio extension of SQLAlchemy, which imports the
# ORM too, and the PostgreSQL dialect. Each costs start-up time on every --reload.
UNUSED_AT_START = (
    "alembic",
    "mako",
    "pygments",
    "sqlalchemy.orm",
    "sqlalchemy.ext.asyncio",
    "sqlalchemy.dialects.postgresql",
    # S3 storage only (ATTACHMENT_STORAGE=s3://...), and then at the start's bucket
    # check: boto3 and botocore take longer to import than the whole app.
    "boto3",
    "botocore",
    "app.attachments.s3",
)

_MODULES_LOADED = """
import asyncio, json, sys
from app.config import load_settings

prefixes = tuple(sys.argv[2].split(","))
overrides = json.loads(sys.argv[3])

def loaded():
    return sorted({name for name in sys.modules if name.startswith(prefixes)})

import app.main
seen = {"import": loaded()}
settings = load_settings(
    _env_file=None,
    llm_provider="openai",
    openai_api_key="test-key",
    session_secret="s" * 40,
    database_url=sys.argv[1],
    mcp_server_url="",
    **overrides,
)
app = app.main.create_app(settings)
seen["build"] = loaded()

async def boot() -> None:
    async with app.router.lifespan_context(app):
        pass

asyncio.run(boot())
seen["start"] = loaded()
print(json.dumps(seen))
"""


def modules_loaded(
    database_url: str, prefixes: tuple[str, ...] = UNUSED_AT_START, **settings: str
) -> dict[str, list[str]]:
    """In a fresh process, with no settings in the environment but ``settings``: the
    modules of ``prefixes`` loaded after importing app.main, after building the app and
    after its start."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("SESSION_SECRET", None)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _MODULES_LOADED,
            database_url,
            ",".join(prefixes),
            json.dumps(settings),
        ],
        cwd=BACKEND,
        env={**env, "OPENAI_AGENTS_DISABLE_TRACING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    seen: dict[str, list[str]] = json.loads(result.stdout.splitlines()[-1])
    return seen


def test_start_loads_migrations_only_when_the_database_is_behind(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'app.db'}"
    first = modules_loaded(database_url)  # a new file: the start migrates it
    assert first["import"] == first["build"] == []
    assert "alembic" in first["start"]
    again = modules_loaded(database_url)  # at head: a restart, a --reload, a replica
    assert again == {"import": [], "build": [], "start": []}


def test_s3_storage_loads_boto3_only_to_start() -> None:
    from tests.s3_server import s3_attachment_settings  # moto: only for this test

    # The start checks the bucket (a wrong one stops it, naming the fix); importing
    # and building the app, which tools and tests do, load no boto3.
    with s3_attachment_settings() as s3:
        seen = modules_loaded("memory://", ("boto3", "botocore"), attachments_enabled="true", **s3)
    assert seen["import"] == seen["build"] == []
    assert "boto3" in seen["start"]


def test_head_revision_is_the_newest_migration() -> None:
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [HEAD_REVISION]
