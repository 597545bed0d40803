"""Helpers for the frontend tests: rendered-and-built frontends, and the ChatKit test stand-in."""
