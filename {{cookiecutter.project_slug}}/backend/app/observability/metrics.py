"""Prometheus metrics, served at /metrics when METRICS_TOKEN is set.

Each app has its own registry (tests run several apps in one process). Code that runs
inside a request reaches its app's metrics through `current()`; elsewhere it gets the
metrics of the app built last, which in a deployed process is the only one.
"""

from __future__ import annotations

from contextvars import ContextVar, Token

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Seconds; a first token past 30 s or a turn past 2 minutes is an outage, not a bucket.
_TTFT_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30)
_DURATION_BUCKETS = (0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)


class Metrics:
    """The app's counters; `registry` is what /metrics serves."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.turns = Counter("chatkit_turns", "Turns, by outcome.", ["outcome"], registry=r)
        self.time_to_first_token = Histogram(
            "chatkit_time_to_first_token_seconds",
            "From the turn's start to the reply's first text.",
            buckets=_TTFT_BUCKETS,
            registry=r,
        )
        self.turn_duration = Histogram(
            "chatkit_turn_duration_seconds",
            "From the turn's start to its end, whatever the outcome.",
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.provider_errors = Counter(
            "chatkit_provider_errors", "Model provider failures, by kind.", ["kind"], registry=r
        )
        self.tokens = Counter(
            "chatkit_tokens",
            "Tokens the provider reported, by direction (input, output).",
            ["direction"],
            registry=r,
        )
        self.rate_limited = Counter(
            "chatkit_rate_limited",
            "Requests refused by a rate limit or cap, by kind.",
            ["kind"],
            registry=r,
        )
        self.uploads = Counter(
            "chatkit_attachment_uploads",
            "Attachment uploads, by outcome (stored, refused); S3 uploads once a message "
            "first names them.",
            ["outcome"],
            registry=r,
        )
        self.upload_bytes = Counter(
            "chatkit_attachment_upload_bytes", "Bytes of stored attachment uploads.", registry=r
        )
        self.active_streams = Gauge(
            "chatkit_active_streams", "Turns streaming right now.", registry=r
        )


_latest = Metrics()
_current: ContextVar[Metrics | None] = ContextVar("metrics", default=None)


def new_app_metrics() -> Metrics:
    """The metrics of an app being built; the fallback of `current()` from now on."""
    global _latest
    _latest = Metrics()
    return _latest


def use(metrics: Metrics) -> Token[Metrics | None]:
    """Make `metrics` the current ones for this request (its middleware calls this)."""
    return _current.set(metrics)


def current() -> Metrics:
    return _current.get() or _latest


def record_rate_limited(kind: str) -> None:
    """Count a refusal by a limit, e.g. kind "user_turns", "ip_turns", "daily_turns"."""
    current().rate_limited.labels(kind=kind).inc()


def record_upload(size: int | None) -> None:
    """Count an upload: stored (``size`` its bytes), or refused (``size`` None)."""
    metrics = current()
    metrics.uploads.labels(outcome="refused" if size is None else "stored").inc()
    if size is not None:
        metrics.upload_bytes.inc(size)


def reset(token: Token[Metrics | None]) -> None:
    _current.reset(token)
