"""An MCP server's tools reach the agent through `mcp_servers=`, on both API styles (trap 10)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mcp.server.mcpserver import MCPServer

from tests.chatkit_client import ChatKitClient
from tests.conftest import BackendFactory
from tests.fake_provider import FakeProvider
from tests.live_server import LiveServer


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    tools = MCPServer("test-tools")

    @tools.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    with LiveServer(tools.streamable_http_app(stateless_http=True)) as server:
        yield f"{server.url}/mcp"


def test_agent_calls_an_mcp_tool(
    backend: BackendFactory, provider: str, fake: FakeProvider, mcp_url: str
) -> None:
    with (
        backend(provider=provider, mcp_server_url=mcp_url) as url,
        ChatKitClient(url) as browser,
    ):
        turn = browser.create_thread('/tool add {"a": 2, "b": 40}')
        assert turn.errors == []
        assert "42" in turn.reply_text

    offered = fake.requests[0].body["tools"]
    names = {tool.get("name") or tool["function"]["name"] for tool in offered}
    # Listed beside the agent's own tools (app/extensions.py), whichever those are.
    assert "add" in names
    # Function tools, never hosted MCP tools (which Chat Completions rejects).
    assert {tool["type"] for tool in offered} == {"function"}
