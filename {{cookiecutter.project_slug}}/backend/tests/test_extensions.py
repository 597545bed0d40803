"""What `app/extensions.py` holds reaches the app: its instructions and tools reach the
model on both API styles, the tools run, and its routers are served next to /chatkit."""

from __future__ import annotations

import httpx
import pytest
from agents import function_tool
from fastapi import APIRouter

from app import extensions
from app.deps import SettingsDep
from tests.chatkit_client import ChatKitClient
from tests.conftest import BackendFactory
from tests.fake_provider import FakeProvider


def offered_tools(fake: FakeProvider) -> set[str]:
    offered = fake.requests[0].json["tools"]
    return {tool.get("name") or tool["function"]["name"] for tool in offered}


def test_the_example_tool_runs(backend: BackendFactory, provider: str, fake: FakeProvider) -> None:
    with backend(provider=provider) as url, ChatKitClient(url) as browser:
        turn = browser.create_thread('/tool current_time {"timezone": "UTC"}')
        assert turn.errors == []
        # The tool's output went back to the model, which quoted it in its reply.
        assert "T" in turn.reply_text and "+00:00" in turn.reply_text
        follow_up = browser.send(turn.thread_id, "thanks")
        assert follow_up.errors == []


def test_a_tool_added_to_the_extensions_reaches_the_agent(
    backend: BackendFactory, provider: str, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    @function_tool
    def shout(text: str) -> str:
        """Return the text in capitals.

        Args:
            text: What to shout.
        """
        return text.upper()

    monkeypatch.setattr(extensions, "TOOLS", [*extensions.TOOLS, shout])
    monkeypatch.setattr(extensions, "INSTRUCTIONS", "Answer like a pirate.")
    with backend(provider=provider) as url, ChatKitClient(url) as browser:
        turn = browser.create_thread('/tool shout {"text": "ahoy there"}')
        assert turn.errors == []
        assert "AHOY THERE" in turn.reply_text

    assert {"shout", "current_time"} <= offered_tools(fake)
    assert ("system", "Answer like a pirate.") in fake.requests[0].messages_text()
    # The tool's output went back to the model as the tool's answer.
    assert ("tool", "AHOY THERE") in fake.requests[1].messages_text()


def test_a_router_added_to_the_extensions_is_served(
    backend: BackendFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    router = APIRouter()

    @router.get("/api/about")
    async def about(settings: SettingsDep) -> dict[str, str]:
        return {"name": settings.project_name}

    monkeypatch.setattr(extensions, "ROUTERS", [router])
    with backend(project_name="Extended") as url:
        response = httpx.get(f"{url}/api/about")
        assert response.status_code == 200
        assert response.json() == {"name": "Extended"}
        # The app's own routes are still there, and the middleware covers the new one.
        assert httpx.get(f"{url}/health").status_code == 200
        assert response.headers.get("x-content-type-options") == "nosniff"
