"""Abuse and cost limits: message size, history size, turn rates, token budget, uploads.

Counters live in the store (``AppStore.add_to_counter``), so replicas on one database
share them. ``Limits.check`` runs on the parsed request before the ChatKit server acts on it.
"""

from app.limits.history import trim_history
from app.limits.turns import LimitExceeded, Limits, Refusal

__all__ = ["LimitExceeded", "Limits", "Refusal", "trim_history"]
