"""HISTORY_MAX_CHARS: the history sent to the model, cut to a size in characters."""

from __future__ import annotations

from chatkit.types import AssistantMessageItem, ThreadItem, UserMessageItem


def item_chars(item: ThreadItem) -> int:
    """About what an item weighs in the prompt: its text, or its JSON for other items."""
    if isinstance(item, UserMessageItem | AssistantMessageItem):
        return sum(len(getattr(part, "text", "") or "") for part in item.content)
    return len(item.model_dump_json())


def trim_history(items: list[ThreadItem], max_chars: int) -> list[ThreadItem]:
    """The newest items (oldest first) that fit in ``max_chars``; the last item (the new
    message) is always kept, even when it alone is over."""
    kept: list[ThreadItem] = []
    total = 0
    for item in reversed(items):
        total += item_chars(item)
        if kept and total > max_chars:
            break
        kept.append(item)
    return kept[::-1]
