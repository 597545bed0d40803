"""Shared fixtures: the loopback fake provider, every store, and the live backend."""

from __future__ import annotations

import os

from app.provider_table import KEY_VARIABLES, PROVIDERS

# Importing app.main builds the app from the environment: give it a complete,
# harmless one, whatever .env says. Tests build their own apps with create_app().
os.environ.update(dict.fromkeys(KEY_VARIABLES, "test-key"))
os.environ.update(
    LLM_BASE_URL="http://127.0.0.1:9/v1",
    DATABASE_URL="memory://",
    SESSION_SECRET="test-secret-" + "x" * 32,
    MCP_SERVER_URL="",
    OPENAI_AGENTS_DISABLE_TRACING="1",
)

from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import AbstractContextManager, contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

from app.config import Settings, load_settings  # noqa: E402
from tests.chatkit_client import ChatKitClient  # noqa: E402
from tests.fake_provider import FakeProvider  # noqa: E402
from tests.live_server import LiveServer  # noqa: E402
from tests.store_fixtures import STORE_KINDS, database_url_for  # noqa: E402

# One provider per API style: what differs between providers is only their row.
API_STYLES = {"responses": "openai", "chat_completions": "openrouter"}


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


@pytest.fixture(autouse=True)
def _fresh_fake(fake: FakeProvider) -> None:
    fake.reset()


@pytest.fixture(params=list(API_STYLES), ids=lambda style: style)
def provider(request: pytest.FixtureRequest) -> str:
    return API_STYLES[request.param]


@pytest.fixture(params=STORE_KINDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url_for(request.param, tmp_path) as url:
        yield url


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(fake: FakeProvider) -> SettingsFactory:
    """Settings pointing at the fake provider; keyword arguments override."""

    def _make(provider: str = "openai", **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "_env_file": None,
            "llm_provider": provider,
            "model_name": "fake-model",
            "llm_base_url": fake.base_url,
            "llm_max_retries": 0,
            "llm_timeout_seconds": 10,
            "database_url": "memory://",
            "session_secret": "s" * 40,
            "mcp_server_url": "",
            PROVIDERS[provider].key_variable.lower(): "test-key",
        }
        return load_settings(**(values | overrides))

    return _make


BackendFactory = Callable[..., AbstractContextManager[str]]


@pytest.fixture
def backend(make_settings: SettingsFactory) -> BackendFactory:
    """`with backend(provider=..., database_url=...) as url:` a live backend on loopback."""
    from app.main import create_app

    @contextmanager
    def _backend(**overrides: Any) -> Iterator[str]:
        with LiveServer(create_app(make_settings(**overrides))) as server:
            yield server.url

    return _backend


@pytest.fixture
def browser(backend: BackendFactory, provider: str, database_url: str) -> Iterator[ChatKitClient]:
    """One browser (cookie jar) on a live backend, for each API style and store."""
    with backend(provider=provider, database_url=database_url) as url, ChatKitClient(url) as client:
        yield client
