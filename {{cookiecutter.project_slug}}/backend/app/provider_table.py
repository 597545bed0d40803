"""The LLM providers: one row each. Adding a provider is one more row in ROWS.

Everything else about providers is derived from this table (the settings' check of
LLM_PROVIDER, the client in app/providers.py, the tests and the smoke test), or
checked against it by tests/test_provider_table.py (the settings' key fields,
.env.example and the README).

Standard library only, and Python 3.9+: tools outside the backend's environment
load this file on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ApiStyle = Literal["responses", "chat_completions"]
# REASONING_SUMMARY's values; "off" asks for no summaries.
ReasoningSummary = Literal["auto", "concise", "detailed", "off"]
REASONING_SUMMARIES: tuple[ReasoningSummary, ...] = ("auto", "concise", "detailed", "off")

# Marks a base URL the user still has to fill in (the generator's example for Azure).
PLACEHOLDER = "YOUR-RESOURCE"


@dataclass(frozen=True)
class Provider:
    name: str
    label: str
    # Most non-OpenAI endpoints serve Chat Completions only; the Responses API is
    # OpenAI's own (and Azure's v1 endpoint).
    api_style: ApiStyle
    # None: the deployment's own URL must come from LLM_BASE_URL.
    base_url: str | None
    key_variable: str
    default_model: str
    # What attachments the provider's API takes, of ALL_ATTACHMENT_KINDS: "image" as
    # image parts, "pdf" as file parts, "text" (always: it goes in as plain text). Only
    # what its API documents for base64 data; a vision model behind a text-only row
    # needs "image" added here. The settings' ATTACHMENT_TYPES are narrowed to these.
    attachment_kinds: frozenset[str]
    key_required: bool = True
    # REASONING_SUMMARY when it is empty. Only the Responses API carries reasoning
    # summaries, and only reasoning models take the parameter (app/reasoning.py).
    reasoning_summary: ReasoningSummary = "off"
    # What LLM_BASE_URL is pre-filled with when base_url is None (holds PLACEHOLDER).
    base_url_example: str = ""


ALL_ATTACHMENT_KINDS = frozenset({"image", "pdf", "text"})
IMAGES_AND_TEXT = frozenset({"image", "text"})
TEXT_ONLY = frozenset({"text"})

ROWS = (
    Provider(
        name="openai",
        label="OpenAI (Responses API)",
        api_style="responses",
        base_url="https://api.openai.com/v1",
        key_variable="OPENAI_API_KEY",
        default_model="gpt-5.1",
        attachment_kinds=ALL_ATTACHMENT_KINDS,
        reasoning_summary="auto",
    ),
    Provider(
        name="openrouter",
        label="OpenRouter",
        api_style="chat_completions",
        base_url="https://openrouter.ai/api/v1",
        key_variable="OPENROUTER_API_KEY",
        default_model="mistralai/devstral-2512:free",
        attachment_kinds=ALL_ATTACHMENT_KINDS,
    ),
    Provider(
        name="gemini",
        label="Google Gemini (OpenAI-compatible endpoint)",
        api_style="chat_completions",
        base_url="https://generativelanguage.googleapis.com/v1beta/openai/",
        key_variable="GEMINI_API_KEY",
        default_model="gemini-2.5-flash",
        attachment_kinds=IMAGES_AND_TEXT,
    ),
    Provider(
        name="anthropic",
        label="Anthropic Claude (OpenAI-compatible endpoint)",
        api_style="chat_completions",
        base_url="https://api.anthropic.com/v1/",
        key_variable="ANTHROPIC_API_KEY",
        default_model="claude-sonnet-4-5",
        attachment_kinds=IMAGES_AND_TEXT,
    ),
    Provider(
        name="deepseek",
        label="DeepSeek",
        api_style="chat_completions",
        base_url="https://api.deepseek.com/v1",
        key_variable="DEEPSEEK_API_KEY",
        default_model="deepseek-chat",
        attachment_kinds=TEXT_ONLY,
    ),
    Provider(
        name="ollama",
        label="Ollama (local models)",
        api_style="chat_completions",
        base_url="http://localhost:11434/v1",
        key_variable="LLM_API_KEY",
        default_model="llama3.2",
        attachment_kinds=TEXT_ONLY,
        key_required=False,
    ),
    Provider(
        name="azure_openai",
        label="Azure OpenAI (v1 endpoint)",
        api_style="responses",
        base_url=None,
        key_variable="AZURE_OPENAI_API_KEY",
        default_model="gpt-5.1",
        attachment_kinds=ALL_ATTACHMENT_KINDS,
        base_url_example=f"https://{PLACEHOLDER}.openai.azure.com/openai/v1/",
    ),
    Provider(
        name="openai_compatible",
        label="Any other OpenAI-compatible endpoint",
        api_style="chat_completions",
        base_url=None,
        key_variable="LLM_API_KEY",
        default_model="gpt-4o-mini",
        attachment_kinds=TEXT_ONLY,
        key_required=False,
    ),
)

PROVIDERS = {row.name: row for row in ROWS}
# Each key variable once, in table order; several providers may share one.
KEY_VARIABLES = tuple(dict.fromkeys(row.key_variable for row in ROWS))

# Model names go to the provider as they are. A routing prefix belongs to LiteLLM or
# to the Agents SDK's own provider registry, and the provider rejects it.
ROUTING_PREFIXES = ("litellm/", "openrouter/")
PREFIXED_MODELS_ALLOWED = frozenset({"openrouter/auto"})


def routing_prefix_fix(model: str) -> str | None:
    """The name to use instead when `model` carries a routing prefix, else None."""
    if model.startswith(ROUTING_PREFIXES) and model not in PREFIXED_MODELS_ALLOWED:
        return model.split("/", 1)[1]
    return None
