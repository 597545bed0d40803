"""OpenTelemetry traces from outside: a live backend exporting to a loopback OTLP/HTTP
receiver (tests/otlp_receiver.py), and a process without an OTLP endpoint loading none of
OpenTelemetry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import ConfigError
from tests.chatkit_client import ChatKitClient
from tests.conftest import BackendFactory, SettingsFactory
from tests.fake_provider import FakeProvider, Fault
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan

BACKEND = Path(__file__).resolve().parents[1]
# What a user might type, and a tool argument: neither may reach a span.
MESSAGE = "my password is Tr0ub4dor&3 PRIVATE-WORDS"
ZONE = "America/Argentina/Ushuaia"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


def ancestors(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[str]:
    """The names of the span's parents, nearest first."""
    names = []
    while span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        names.append(span.name)
    return names


def test_a_turn_with_a_tool_call_is_one_trace_under_the_request(
    backend: BackendFactory, provider: str, fake: FakeProvider, receiver: OtlpReceiver
) -> None:
    with (
        backend(
            provider=provider,
            otel_exporter_otlp_endpoint=receiver.url,
            otel_exporter_otlp_headers="Authorization=Bearer%20collector-token",
            otel_service_name="chat-under-test",
        ) as url,
        ChatKitClient(url) as browser,
    ):
        turn = browser.create_thread("/tool current_time " + json.dumps({"timezone": ZONE}))
        assert "the tool returned" in turn.reply_text
        reply = browser.send(turn.thread_id, MESSAGE).reply_text
        fake.fail_next(Fault.HTTP_500)
        assert browser.send(turn.thread_id, "and now?").errors
        # A link's query with a user id and a signature, say.
        browser.http.get("/health", params={"user": "alice-SECRET", "signature": "c2lnLVNFQ1JFVA"})
    # The backend has stopped: its exporter sent what it had buffered.
    spans = receiver.spans
    by_id = {span.span_id: span for span in spans}
    servers = [s for s in spans if s.kind == "server" and s.attributes.get("http.route")]
    assert [s.name for s in servers] == ["POST /chatkit"] * 3 + ["GET /health"]
    assert servers[3].attributes["url.query"] == "user=REDACTED&signature=REDACTED"
    first, _, failed, _ = ([s for s in spans if s.trace_id == t.trace_id] for t in servers)

    agents = [s for s in first if s.name == "invoke_agent Assistant"]
    tools = [s for s in first if s.name == "execute_tool current_time"]
    models = [s for s in first if s.attributes.get("gen_ai.operation.name") == "chat"]
    calls = [s for s in first if s.kind == "client" and s.attributes.get("http.method")]
    assert len(agents) == 1 and len(tools) == 1
    assert len(models) == 2 and len(calls) == 2  # the tool call, then the reply quoting it
    for span in [*agents, *tools, *models]:
        assert "POST /chatkit" in ancestors(span, by_id), span.name
    assert "invoke_agent Assistant" in ancestors(tools[0], by_id)
    # Each model span holds its own HTTP request to the provider.
    assert sorted(c.parent_span_id for c in calls) == sorted(m.span_id for m in models)
    assert all(str(c.attributes["http.url"]).startswith(fake.base_url) for c in calls)
    assert all(m.attributes.get("gen_ai.usage.output_tokens", 0) > 0 for m in models)
    assert tools[0].attributes["gen_ai.tool.name"] == "current_time"
    # A failed turn: the provider's 500 marks its HTTP span, the model span and the agent's.
    errors = {(s.kind, s.name.split()[0]) for s in failed if s.status_code == 2}
    assert errors == {("client", "POST"), ("client", "chat"), ("internal", "invoke_agent")}

    assert {s.resource["service.name"] for s in spans} == {"chat-under-test"}
    assert {h.get("authorization") for h in receiver.headers} == {"Bearer collector-token"}
    # No conversation text in any attribute, by default.
    text = json.dumps([[s.name, s.attributes, s.status_message] for s in spans])
    for private in (MESSAGE, "PRIVATE-WORDS", ZONE, reply, turn.reply_text, "SECRET", "c2lnL"):
        assert private not in text


def test_the_traces_endpoint_alone_turns_traces_on_with_its_own_headers(
    backend: BackendFactory, receiver: OtlpReceiver
) -> None:
    """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, as OpenTelemetry defines it: the traces URL
    itself, enough without the base URL; OTEL_EXPORTER_OTLP_TRACES_HEADERS replace the
    general headers."""
    with (
        backend(
            otel_exporter_otlp_traces_endpoint=f"{receiver.url}/v1/traces",
            otel_exporter_otlp_headers="Authorization=Bearer%20general",
            otel_exporter_otlp_traces_headers="Authorization=Bearer%20traces-only",
        ) as url,
        ChatKitClient(url) as browser,
    ):
        assert browser.create_thread(MESSAGE).errors == []
    assert "POST /chatkit" in {s.name for s in receiver.spans if s.kind == "server"}
    assert {h.get("authorization") for h in receiver.headers} == {"Bearer traces-only"}


def test_the_traces_url_is_the_traces_endpoint_else_the_base_urls(
    make_settings: SettingsFactory,
) -> None:
    base = "http://collector:4318"
    assert make_settings().otlp_traces_url == ""
    assert make_settings(otel_exporter_otlp_endpoint=base + "/").otlp_traces_url == (
        base + "/v1/traces"
    )
    both = make_settings(
        otel_exporter_otlp_endpoint=base,
        otel_exporter_otlp_traces_endpoint="https://traces.example.com/api/v2/spans",
    )
    assert both.otlp_traces_url == "https://traces.example.com/api/v2/spans"
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'collector'"):
        make_settings(otel_exporter_otlp_traces_endpoint="collector")


def test_only_an_endpoint_loads_opentelemetry_and_the_openai_export_rule_holds() -> None:
    """The app as a process builds it: the SDK, exporters and instrumentations stay out,
    and the Agents SDK's export keeps app/providers.py's rule; with an endpoint, the
    SDK's spans also go to OpenTelemetry, beside OpenAI's export only for OpenAI itself."""
    script = """
import json, sys
from agents.tracing import get_trace_provider
from app.main import create_app
from tests.conftest import fake_settings

class Fake:
    base_url = "http://127.0.0.1:9/v1"

def processors():
    return sorted(type(p).__name__ for p in get_trace_provider()._multi_processor._processors)

create_app(fake_settings(Fake(), "openrouter"))
loaded = sorted({m.split(".")[1] for m in sys.modules if m.startswith("opentelemetry.")})
off = {"loaded": loaded, "tracing": "app.observability.tracing" in sys.modules,
       "disabled": get_trace_provider()._disabled}
create_app(fake_settings(Fake(), "openrouter", otel_exporter_otlp_endpoint=Fake.base_url))
elsewhere = {"processors": processors(), "disabled": get_trace_provider()._disabled}
create_app(fake_settings(Fake(), "openai", llm_base_url="https://api.openai.com/v1",
                         otel_exporter_otlp_endpoint=Fake.base_url))
print(json.dumps({"off": off, "elsewhere": elsewhere, "openai": processors()}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BACKEND,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = json.loads(result.stdout.splitlines()[-1])
    # FastAPI and the MCP client import the API, whose calls do nothing without an SDK.
    assert not {"sdk", "exporter", "instrumentation", "proto"} & set(found["off"]["loaded"])
    assert found["off"] | {"loaded": []} == {"loaded": [], "tracing": False, "disabled": True}
    assert found["elsewhere"] == {"processors": ["AgentSpans"], "disabled": False}
    assert found["openai"] == ["AgentSpans", "BatchTraceProcessor"]


def test_an_endpoint_that_is_not_http_is_named(make_settings: SettingsFactory) -> None:
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_ENDPOINT: 'grpc://collector:4317'"):
        make_settings(otel_exporter_otlp_endpoint="grpc://collector:4317")
