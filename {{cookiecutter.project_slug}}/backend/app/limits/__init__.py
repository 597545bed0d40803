"""Abuse and cost limits: message size, history size, turn rates, token budget.

Counters live in the store (``AppStore.add_to_counter``), so replicas on one database
share them. ``Limits.check`` runs before a request reaches the ChatKit server.
"""

from app.limits.history import trim_history
from app.limits.turns import Limits, Refusal

__all__ = ["Limits", "Refusal", "trim_history"]
