"""The provider client: one per process, built from the row in app/provider_table.py."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from agents import (
    Model,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    set_trace_processors,
    set_tracing_disabled,
    set_tracing_export_api_key,
)
from agents.tracing.processors import default_processor
from openai import AsyncOpenAI

from app.config import ConfigError, Settings
from app.provider_table import PLACEHOLDER, PROVIDERS, Provider
from app.sdk_fixes.conversation_as_is import ProviderClient


@dataclass(frozen=True, slots=True)
class ResolvedProvider:
    """A provider row with this deployment's URL and key filled in."""

    provider: Provider
    base_url: str
    api_key: str
    model_name: str

    @property
    def host(self) -> str:
        """The endpoint's host, safe to show to users (no credentials, no path)."""
        return urlsplit(self.base_url).hostname or self.base_url

    @property
    def exports_traces(self) -> bool:
        # Traces go to OpenAI; only do that when the model is OpenAI's itself.
        return self.provider.name == "openai" and self.base_url == self.provider.base_url


def resolve_provider(settings: Settings) -> ResolvedProvider:
    """Check the provider's URL and key, naming the variable that is missing."""
    provider = PROVIDERS[settings.llm_provider]
    base_url = settings.llm_base_url.strip() or provider.base_url
    if not base_url or PLACEHOLDER in base_url:
        raise ConfigError(
            f"LLM_BASE_URL is required for LLM_PROVIDER={provider.name}: set it to the "
            "endpoint's OpenAI-compatible base URL, e.g. https://host.example.com/v1"
        )
    secret = getattr(settings, provider.key_variable.lower())
    api_key = secret.get_secret_value().strip() if secret is not None else ""
    if provider.key_required and not api_key:
        raise ConfigError(
            f"{provider.key_variable} is not set: LLM_PROVIDER={provider.name} needs it. "
            f"Add {provider.key_variable}=... to .env (see .env.example)."
        )
    return ResolvedProvider(
        provider=provider,
        base_url=base_url,
        # The client insists on a key; keyless local servers ignore this one.
        api_key=api_key or "not-needed",
        model_name=settings.model_name,
    )


def build_client(resolved: ResolvedProvider, settings: Settings) -> AsyncOpenAI:
    """The process-wide client: its connection pool is reused by every request."""
    return ProviderClient(
        base_url=resolved.base_url,
        api_key=resolved.api_key,
        timeout=settings.llm_timeout_seconds,
        max_retries=settings.llm_max_retries,
    )


def build_model(
    resolved: ResolvedProvider, client: AsyncOpenAI, model_name: str | None = None
) -> Model:
    """MODEL_NAME's model, or ``model_name``'s (one of MODEL_CHOICES) on the same client."""
    name = model_name or resolved.model_name
    if resolved.provider.api_style == "responses":
        return OpenAIResponsesModel(model=name, openai_client=client)
    return OpenAIChatCompletionsModel(model=name, openai_client=client)


def configure_tracing(resolved: ResolvedProvider) -> None:
    """Export Agents SDK traces to OpenAI only when talking to OpenAI itself."""
    if resolved.exports_traces:
        set_trace_processors([default_processor()])  # the SDK's own, whatever came before
        set_tracing_disabled(False)
        set_tracing_export_api_key(resolved.api_key)
    else:
        set_tracing_disabled(True)
