"""Logs, request ids and metrics (README, "Observability")."""
