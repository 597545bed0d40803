"""Which model answers a message: MODEL_NAME, or one of MODEL_CHOICES the user picked.

The composer's picker (``GET /chatkit/models``) sends its choice as the message's
``inference_options.model``. A name outside the list is refused before anything is
stored (``check``), so a user can never run an arbitrary model. Without MODEL_CHOICES the
only model is MODEL_NAME: naming it is accepted, naming another is refused. The choice is
stored with the message, so a retry, or a client tool's output, runs the same model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agents import Model, ModelSettings
from chatkit.types import (
    ChatKitReq,
    ThreadItem,
    ThreadsAddUserMessageReq,
    ThreadsCreateReq,
    UserMessageItem,
)
from openai.types.shared import ReasoningEffort

from app.provider_table import ReasoningSummary
from app.providers import ResolvedProvider
from app.reasoning import reasoning_settings

logger = logging.getLogger(__name__)


class ModelNotAllowed(ValueError):
    """A message asked for a model outside the list: HTTP 400 naming the allowed ones."""

    def __init__(self, asked: str, allowed: Sequence[str]) -> None:
        self.allowed = list(allowed)
        super().__init__(
            f"Model {asked[:100]!r} is not offered here: choose one of {', '.join(allowed)} "
            "(MODEL_CHOICES)."
        )


@dataclass(frozen=True, slots=True)
class TurnModel:
    """The model of one turn, and the parameters only it takes (reasoning)."""

    name: str
    model: Model
    settings: ModelSettings


class ModelChoices:
    """The allowed models, each built once through ``build(name)`` (app/providers.py)."""

    def __init__(
        self,
        resolved: ResolvedProvider,
        choices: Sequence[str],
        build: Callable[[str], Model],
        reasoning_summary: ReasoningSummary = "off",
        reasoning_effort: ReasoningEffort = None,
    ) -> None:
        self.default = resolved.model_name
        self.names = list(choices) or [self.default]
        self.offered = bool(choices)
        self._turns = {
            name: TurnModel(
                name,
                build(name),
                reasoning_settings(
                    resolved.provider.api_style, name, reasoning_summary, reasoning_effort
                ),
            )
            for name in self.names
        }

    def listing(self) -> list[dict[str, object]]:
        """What the picker shows; empty without MODEL_CHOICES (no picker)."""
        if not self.offered:
            return []
        return [{"id": n, "label": n, "default": n == self.default} for n in self.names]

    def check(self, request: ChatKitReq) -> None:
        """Raise ModelNotAllowed for a message naming a model outside the list."""
        if not isinstance(request, ThreadsCreateReq | ThreadsAddUserMessageReq):
            return
        asked = request.params.input.inference_options.model
        if asked and asked not in self._turns:
            raise ModelNotAllowed(asked, self.names)

    def for_turn(self, history: Sequence[ThreadItem]) -> TurnModel:
        """The model the newest user message asked for; the default when it asked for
        none, or for one no longer offered (MODEL_CHOICES changed since it was sent)."""
        message = next((i for i in reversed(history) if isinstance(i, UserMessageItem)), None)
        asked = message.inference_options.model if message is not None else None
        turn = self._turns.get(asked or self.default)
        if turn is None:
            logger.info("model %s is no longer offered; using %s", asked, self.default)
            return self._turns[self.default]
        return turn
