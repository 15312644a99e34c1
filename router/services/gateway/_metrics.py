"""Prometheus metrics of one gateway (own registry, so several apps can live in one process)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
)


class Metrics:
    """Requests by route and status, decisions by outcome, attempts by error class, latencies."""

    def __init__(self) -> None:
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "unhardcoded_http_requests",
            "HTTP requests by route and status code.",
            ["route", "status"],
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "unhardcoded_http_request_seconds",
            "Time from request to response head, by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "unhardcoded_decisions",
            "Decisions by outcome (routed, preview, unrecorded, no_entry).",
            ["outcome"],
            registry=self.registry,
        )
        self.attempts = Counter(
            "unhardcoded_upstream_attempts",
            "Upstream attempts by provider and error class ('ok' on success).",
            ["provider", "error_class"],
            registry=self.registry,
        )
        self.attempt_latency = Histogram(
            "unhardcoded_upstream_attempt_seconds",
            "Upstream attempt latency by provider.",
            ["provider"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decide_latency = Histogram(
            "unhardcoded_decide_seconds",
            "Evaluate and durably record one decision.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

        self.attempt_record_failures = Counter(
            "unhardcoded_attempt_record_failures",
            "Successful attempts whose AttemptFinished event could not be recorded after the "
            "answer was sent (each one is also logged).",
            registry=self.registry,
        )

    def labelled(self, metric: Any, *values: str) -> Any:
        """`metric.labels(*values)`, remembered: the lookup (label checks, a lock) is paid once
        per label set instead of on every request."""
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def exposition(self) -> bytes:
        """The text exposition format."""
        return bytes(generate_latest(self.registry))
