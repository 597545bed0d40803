"""Turn a provider failure into a message the user can act on.

The text never includes the provider's response body or the API key: only the
status, the host and what to do next.
"""

from __future__ import annotations

import json

import openai
from agents.exceptions import AgentsException
from chatkit.errors import CustomStreamError

from app.providers import ResolvedProvider


def _retry_after(error: openai.APIStatusError) -> str:
    seconds = error.response.headers.get("retry-after", "").strip()
    return f" in {seconds} s" if seconds.isdigit() else " in a moment"


def to_stream_error(
    error: Exception, resolved: ResolvedProvider, *, reply_started: bool = False
) -> CustomStreamError:
    """The user-facing error for an exception raised while the model streamed."""
    name = resolved.provider.name
    key = resolved.provider.key_variable
    incomplete = CustomStreamError(
        f"The model provider ({name}) sent an incomplete or invalid reply. "
        "Send your message again.",
        allow_retry=True,
    )
    if reply_started and isinstance(error, openai.APIConnectionError):
        return incomplete  # The connection broke mid-reply, not before it.
    match error:
        case openai.RateLimitError():
            return CustomStreamError(
                f"The model provider ({name}) is rate limiting requests (HTTP 429). "
                f"Send your message again{_retry_after(error)}.",
                allow_retry=True,
            )
        case openai.AuthenticationError() | openai.PermissionDeniedError():
            return CustomStreamError(
                f"The model provider ({name}) rejected the API key "
                f"(HTTP {error.status_code}). Check {key} in the backend's .env.",
                allow_retry=False,
            )
        case openai.NotFoundError():
            return CustomStreamError(
                f"The model provider ({name}) does not know the model "
                f"'{resolved.model_name}' (HTTP 404). Check MODEL_NAME.",
                allow_retry=False,
            )
        case openai.APIStatusError() if error.status_code >= 500:
            return CustomStreamError(
                f"The model provider ({name}) failed (HTTP {error.status_code}). "
                "Send your message again.",
                allow_retry=True,
            )
        case openai.APIStatusError():
            return CustomStreamError(
                f"The model provider ({name}) refused the request (HTTP {error.status_code}). "
                "Check MODEL_NAME and the provider's limits.",
                allow_retry=False,
            )
        case openai.APITimeoutError():
            return CustomStreamError(
                f"The model provider ({name}) did not answer in time. Send your message again.",
                allow_retry=True,
            )
        case openai.APIConnectionError():
            return CustomStreamError(
                f"Could not reach the model provider at {resolved.host}. Check that it is "
                "running and that LLM_BASE_URL is right, then send your message again.",
                allow_retry=True,
            )
        case openai.APIError() | AgentsException() | json.JSONDecodeError():
            return incomplete
    return CustomStreamError(
        "Something went wrong while answering. Send your message again.", allow_retry=True
    )
