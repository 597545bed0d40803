"""Which turns carry reasoning parameters, and which summary they ask for.

Only the Responses API streams reasoning summaries, and only reasoning models take the
``reasoning`` parameter: gpt-4o and gpt-4.1 answer 400 to it, and Chat Completions
providers (OpenRouter, Gemini...) have their own dialects of it. So anything else gets
no reasoning parameters at all, whatever REASONING_SUMMARY says.
"""

from __future__ import annotations

import re

from agents import ModelSettings
from openai.types.shared import Reasoning, ReasoningEffort

from app.provider_table import ApiStyle, Provider, ReasoningSummary

# gpt-5, gpt-5.1, gpt-5-mini, o1, o3-mini, o4-mini...; their "-chat" aliases do not reason.
_REASONING_MODEL = re.compile(r"(gpt-5(\.\d+)?|o[134])(-.*)?")


def accepts_reasoning(model_name: str) -> bool:
    """Whether ``model_name`` takes reasoning parameters (by its name, as OpenAI's)."""
    name = model_name.lower()
    return bool(_REASONING_MODEL.fullmatch(name)) and "-chat" not in name


def summary_for(setting: ReasoningSummary | None, provider: Provider) -> ReasoningSummary:
    """REASONING_SUMMARY, or the provider's default when it is empty."""
    return setting or provider.reasoning_summary


def reasoning_settings(
    api_style: ApiStyle,
    model_name: str,
    summary: ReasoningSummary,
    effort: ReasoningEffort = None,
) -> ModelSettings:
    """The turn's reasoning parameters: none unless the API style and the model take
    them; then the summary unless it is off, and the effort when one is set."""
    if api_style != "responses" or not accepts_reasoning(model_name):
        return ModelSettings()
    reasoning = Reasoning(summary=None if summary == "off" else summary, effort=effort)
    return ModelSettings(reasoning=reasoning if reasoning.summary or reasoning.effort else None)
