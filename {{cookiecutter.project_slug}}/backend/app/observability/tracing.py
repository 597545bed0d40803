"""OpenTelemetry traces, on when an OTLP endpoint is set (README, "Traces").

app/main.py imports this module only then, so a process without traces loads none of
OpenTelemetry. Each request's trace holds:

- the server span of every HTTP request, from FastAPI's own OpenTelemetry support;
- the provider calls, from the openai client's httpx2 pool (…-instrumentation-httpx),
  each under the model span it serves;
- the Agents SDK's spans (agent run, model calls, tools, handoffs, guardrails), turned
  into OpenTelemetry spans by `AgentSpans`, under the request's span, on every provider.

Span attributes carry names, models, ids and token counts: never message, tool argument
or reply text, nor the values of a request's query string.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import httpx2
from agents import add_trace_processor, set_trace_processors, set_tracing_disabled
from agents.tracing import (
    AgentSpanData,
    CustomSpanData,
    FunctionSpanData,
    GenerationSpanData,
    GuardrailSpanData,
    HandoffSpanData,
    MCPListToolsSpanData,
    ResponseSpanData,
    Span,
    TaskSpanData,
    Trace,
    TracingProcessor,
    TurnSpanData,
    get_current_span,
)
from fastapi.telemetry import TelemetryConfig
from openai import AsyncOpenAI
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.re import parse_env_headers

from app.config import Settings
from app.observability.redact import query_names_only
from app.providers import ResolvedProvider

logger = logging.getLogger("app")

Attributes = dict[str, str | int | bool | list[str]]


@dataclass
class Traces:
    """The process's tracer provider and what feeds it."""

    provider: TracerProvider

    def server_spans(self) -> TelemetryConfig:
        """`FastAPI(telemetry=...)`: request spans to this provider, and nothing else.

        Its metrics stay off (/metrics has the app's own), and so do its logs of
        validation errors, which would carry the rejected input.
        """
        return {"tracer_provider": self.provider, "metrics": False, "logs": False}

    def shutdown(self) -> None:
        """Send the spans still buffered (the app is stopping)."""
        self.provider.shutdown()


def start_traces(settings: Settings, resolved: ResolvedProvider, client: AsyncOpenAI) -> Traces:
    """The exporter to the OTLP traces URL, fed by the provider `client`'s
    requests and the Agents SDK's spans.

    The SDK's own export to OpenAI stays as app/providers.py set it: on for OpenAI
    itself, beside this one; elsewhere the SDK's spans go only here.
    """
    headers = settings.otlp_traces_headers
    exporter = OTLPSpanExporter(
        endpoint=settings.otlp_traces_url,
        headers=parse_env_headers(headers.get_secret_value(), liberal=True) if headers else None,
    )
    # Resource.create() adds OTEL_RESOURCE_ATTRIBUTES from the environment.
    name = settings.otel_service_name or settings.project_name
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(QueryValuesRedacted())
    provider.add_span_processor(BatchSpanProcessor(exporter))
    # Typed for httpx clients only; the instrumentor is the one for httpx2, which openai uses.
    HTTPX2ClientInstrumentor.instrument_client(
        client._client,  # type: ignore[arg-type]
        tracer_provider=provider,
    )
    spans = AgentSpans(provider.get_tracer("app.agents"))
    _calls_under_model_spans(client._client, spans)
    if resolved.exports_traces:
        add_trace_processor(spans)
    else:
        set_trace_processors([spans])  # without the SDK's exporter to OpenAI
    set_tracing_disabled(False)
    host = urlsplit(settings.otlp_traces_url).netloc.rpartition("@")[2]
    logger.info("traces: OTLP/HTTP to %s", host)  # the host only: a URL may hold credentials
    return Traces(provider)


def _calls_under_model_spans(http: httpx2.AsyncClient, spans: AgentSpans) -> None:
    """Make the SDK's current span (a model call's) the OpenTelemetry parent of each
    request the client sends, so the instrumented transport's span nests under it.

    The SDK keeps its current span in its own context variable; OpenTelemetry's is
    set here for the length of one request, in one coroutine, and reset after it.
    """
    for transport in [http._transport, *http._mounts.values()]:
        if transport is None:
            continue
        send = transport.handle_async_request  # the instrumented one

        async def under_current_span(request: httpx2.Request, send: Any = send) -> httpx2.Response:
            parent = spans.current()
            if parent is None:
                return cast(httpx2.Response, await send(request))
            token = otel_context.attach(trace.set_span_in_context(parent))
            try:
                return cast(httpx2.Response, await send(request))
            finally:
                otel_context.detach(token)

        setattr(transport, "handle_async_request", under_current_span)  # noqa: B010


class QueryValuesRedacted(SpanProcessor):
    """A server span's query string keeps its names only: a link's values may be ids
    and signatures, which a tracing backend has no use for."""

    def on_start(self, span: SdkSpan, parent_context: otel_context.Context | None = None) -> None:
        query = span.attributes.get("url.query") if span.attributes else None
        if isinstance(query, str):
            span.set_attribute("url.query", query_names_only(query))


class AgentSpans(TracingProcessor):
    """The Agents SDK's traces and spans as OpenTelemetry spans.

    A run's trace becomes a span under the span current when the run started (the
    request's), and each SDK span a child of its SDK parent.
    """

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer
        self.open: dict[str, trace.Span] = {}  # by SDK trace or span id
        self.lock = threading.Lock()

    def current(self) -> trace.Span | None:
        """The OpenTelemetry span of the SDK's current span, if it has one."""
        sdk_span = get_current_span()
        if sdk_span is None:
            return None
        with self.lock:
            return self.open.get(sdk_span.span_id)

    def on_trace_start(self, sdk_trace: Trace) -> None:
        span = self.tracer.start_span(
            sdk_trace.name,
            context=otel_context.get_current(),
            attributes={"openai.agents.trace_id": sdk_trace.trace_id},
        )
        with self.lock:
            self.open[sdk_trace.trace_id] = span

    def on_trace_end(self, sdk_trace: Trace) -> None:
        with self.lock:
            span = self.open.pop(sdk_trace.trace_id, None)
        if span is not None:
            span.end()

    def on_span_start(self, sdk_span: Span[Any]) -> None:
        with self.lock:
            parent = self.open.get(sdk_span.parent_id or sdk_span.trace_id)
        name, kind, attributes = describe(sdk_span.span_data)
        span = self.tracer.start_span(
            name,
            context=trace.set_span_in_context(parent) if parent is not None else None,
            kind=kind,
            attributes=attributes,
        )
        with self.lock:
            self.open[sdk_span.span_id] = span

    def on_span_end(self, sdk_span: Span[Any]) -> None:
        with self.lock:
            span = self.open.pop(sdk_span.span_id, None)
        if span is None:
            return
        # Known only once the call is done: the response id, the model, the usage.
        _, _, attributes = describe(sdk_span.span_data)
        span.set_attributes(attributes)
        if sdk_span.error:
            span.set_status(Status(StatusCode.ERROR, sdk_span.error.get("message")))
        span.end()

    def shutdown(self) -> None:
        with self.lock:
            spans, self.open = list(self.open.values()), {}
        for span in spans:
            span.end()

    def force_flush(self) -> None:
        """The tracer provider's batch processor sends the spans."""


def describe(data: Any) -> tuple[str, SpanKind, Attributes]:
    """An SDK span's name, kind and attributes, following OpenTelemetry's GenAI names
    where they exist. No text of the conversation: inputs and outputs are left out."""
    attributes: Attributes = {"openai.agents.span_type": data.type}
    match data:
        case AgentSpanData():
            attributes |= {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": data.name}
            if data.tools:
                attributes["openai.agents.tools"] = list(data.tools)
            if data.handoffs:
                attributes["openai.agents.handoffs"] = list(data.handoffs)
            return f"invoke_agent {data.name}", SpanKind.INTERNAL, attributes
        case FunctionSpanData():
            attributes |= {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": data.name}
            return f"execute_tool {data.name}", SpanKind.INTERNAL, attributes
        case GenerationSpanData():
            model = data.model or ""
            attributes |= {"gen_ai.operation.name": "chat", "gen_ai.request.model": model}
            attributes |= _usage(data.usage)
            return f"chat {model}".strip(), SpanKind.CLIENT, attributes
        case ResponseSpanData():
            attributes["gen_ai.operation.name"] = "chat"
            response = data.response
            if response is not None:
                attributes |= {"gen_ai.response.id": response.id}
                attributes |= {"gen_ai.response.model": response.model}
                if response.usage is not None:
                    attributes |= {
                        "gen_ai.usage.input_tokens": response.usage.input_tokens,
                        "gen_ai.usage.output_tokens": response.usage.output_tokens,
                    }
            return "chat", SpanKind.CLIENT, attributes
        case HandoffSpanData():
            attributes |= {
                "openai.agents.from_agent": data.from_agent or "",
                "openai.agents.to_agent": data.to_agent or "",
            }
            return "handoff", SpanKind.INTERNAL, attributes
        case GuardrailSpanData():
            attributes |= {"openai.agents.guardrail": data.name}
            attributes["openai.agents.triggered"] = data.triggered
            return f"guardrail {data.name}", SpanKind.INTERNAL, attributes
        case MCPListToolsSpanData():
            attributes["openai.agents.mcp_server"] = data.server or ""
            return "mcp list_tools", SpanKind.CLIENT, attributes
        case TurnSpanData():
            attributes |= {"openai.agents.turn": data.turn, "gen_ai.agent.name": data.agent_name}
            return f"turn {data.turn}", SpanKind.INTERNAL, attributes | _usage(data.usage)
        case TaskSpanData():
            # One Runner run, under the trace's span of the same name.
            return "task", SpanKind.INTERNAL, attributes | _usage(data.usage)
        case CustomSpanData():
            # Its data is whatever the code that made it put there: left out.
            return data.name, SpanKind.INTERNAL, attributes
    return str(data.type), SpanKind.INTERNAL, attributes


def _usage(usage: dict[str, Any] | None) -> Attributes:
    if not usage:
        return {}
    found = {
        "gen_ai.usage.input_tokens": usage.get("input_tokens", usage.get("prompt_tokens")),
        "gen_ai.usage.output_tokens": usage.get("output_tokens", usage.get("completion_tokens")),
    }
    return {key: value for key, value in found.items() if isinstance(value, int)}
