"""Configuration mistakes stop the backend at startup with one line that names the fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import ConfigError, load_settings
from app.provider_table import PROVIDERS
from app.providers import resolve_provider

BACKEND = Path(__file__).resolve().parents[1]


def start_backend(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return subprocess.run(
        [sys.executable, "-c", "import app.main"],
        cwd=BACKEND,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_missing_key_stops_the_process_with_one_line() -> None:
    result = start_backend({"LLM_PROVIDER": "openrouter", "LLM_BASE_URL": ""})
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


def test_startup_objects_are_out_of_the_collectors_full_collections(tmp_path: Path) -> None:
    # In a process of its own: the test process may have frozen its objects already.
    script = """
import asyncio, gc
from app.main import create_app

app = create_app()

async def boot() -> None:
    async with app.router.lifespan_context(app):
        print(gc.get_freeze_count())

asyncio.run(boot())
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BACKEND,
        env={
            **os.environ,
            "LLM_PROVIDER": "openai",
            "OPENAI_API_KEY": "test-key",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'gc.db'}",
            "SESSION_SECRET": "s" * 40,
            "MCP_SERVER_URL": "",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) > 100_000
