"""Shared fixtures: the loopback fake provider, every store, and the live backend."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings, load_settings
from app.provider_table import PROVIDERS
from tests.chatkit_client import ChatKitClient
from tests.fake_provider import FakeProvider
from tests.live_server import LiveServer
from tests.store_fixtures import STORE_KINDS, database_url_for

# Tests build their apps with create_app(settings): importing app.main reads nothing.
# Whatever a test's settings say, the Agents SDK uploads no traces from a test run.
os.environ["OPENAI_AGENTS_DISABLE_TRACING"] = "1"
# The session cookie, whatever the project signs in with (this process and the app
# processes tests start): tests/test_oidc.py asks for AUTH_MODE=oidc itself.
os.environ["AUTH_MODE"] = "session"

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


def fake_settings(fake: FakeProvider, provider: str = "openai", **overrides: Any) -> Settings:
    """Settings pointing at the fake provider; keyword arguments override."""
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
        # Turn rate limits off: tests send turns faster than users may (test_limits.py
        # switches each one on).
        "rate_limit_user_turns_per_minute": 0,
        "rate_limit_ip_turns_per_minute": 0,
        "rate_limit_user_turns_per_day": 0,
        "rate_limit_ip_threads_per_hour": 0,
        "rate_limit_user_uploads_per_minute": 0,
        "rate_limit_user_upload_bytes_per_day": 0,
        PROVIDERS[provider].key_variable.lower(): "test-key",
    }
    return load_settings(**(values | overrides))


@pytest.fixture
def make_settings(fake: FakeProvider) -> SettingsFactory:
    """Settings pointing at the fake provider; keyword arguments override."""

    def _make(provider: str = "openai", **overrides: Any) -> Settings:
        return fake_settings(fake, provider, **overrides)

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
