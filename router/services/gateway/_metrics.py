"""Prometheus metrics of one gateway (own registry, so several apps can live in one process).

Under `serve --workers N` every process counts into files of one shared directory
(prometheus_client's multiprocess mode, `MULTIPROCESS_DIR_ENV`) and `/metrics` sums them, so a
scrape gives the whole server's counters whichever process answers it.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["MULTIPROCESS_DIR_ENV", "Metrics"]

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's own variable: set before it is imported, its values live in files there."""


def _multiprocess_dir() -> str | None:
    """The shared directory when this process counts into files, else None. Decided by how
    prometheus_client stores values (chosen once, at its import), not by the variable alone:
    set later, the variable would point at files that hold none of this process's counts."""
    if values.ValueClass is values.MutexValue:
        return None
    return os.environ[MULTIPROCESS_DIR_ENV]


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
        self.multiprocess_dir = _multiprocess_dir()
        """Where every process of the server counts (multiprocess mode), or None."""
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

        self.witness_submissions = Counter(
            "unhardcoded_witness_submissions",
            "Checkpoint submissions to witnesses by witness and outcome (cosigned, superseded, "
            "refused, unreachable, invalid, error — the log's own database failed); every outcome "
            "but the first two is a failure.",
            ["witness", "outcome"],
            registry=self.registry,
        )
        self.witness_cosigned_size = Gauge(
            "unhardcoded_witness_cosigned_tree_size",
            "The largest tree size each witness is known to have cosigned.",
            ["witness"],
            registry=self.registry,
            multiprocess_mode="max",
        )

        self.catalog_syncs = Counter(
            "unhardcoded_catalog_syncs",
            "Scheduled catalog syncs by source and outcome (published: a new version; "
            "unchanged: already published; failed: nothing published, the current version "
            "stays in force).",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.catalog_sync_success = Gauge(
            "unhardcoded_catalog_sync_last_success_timestamp_seconds",
            "Unix time of the last successful scheduled sync of each source.",
            ["source"],
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.catalog_version = Gauge(
            "unhardcoded_catalog_version_info",
            "1 for the catalog version new decisions are made on (0 once replaced).",
            ["version"],
            registry=self.registry,
            multiprocess_mode="max",
        )
        self._catalog_in_use: str | None = None

    def catalog_sync_outcome(self, source: str, outcome: str, version: str | None) -> None:
        """Count one scheduled sync of `source` (the catalog syncer's outcome listener)."""
        self.labelled(self.catalog_syncs, source, outcome).inc()
        if outcome != "failed":
            self.labelled(self.catalog_sync_success, source).set(time.time())

    def catalog_in_use(self, version: str) -> None:
        """The catalog version new decisions use is `version` (the previous one goes to 0)."""
        if version == self._catalog_in_use:
            return
        if self._catalog_in_use is not None:
            self.labelled(self.catalog_version, self._catalog_in_use).set(0)
        self.labelled(self.catalog_version, version).set(1)
        self._catalog_in_use = version

    def witness_outcome(self, witness: str, outcome: str, size: int | None) -> None:
        """Count one submission to `witness` (the witness submitter's outcome listener)."""
        self.labelled(self.witness_submissions, witness, outcome).inc()
        if outcome in ("cosigned", "superseded") and size is not None:
            self.labelled(self.witness_cosigned_size, witness).set(size)

    def labelled(self, metric: Any, *values: str) -> Any:
        """`metric.labels(*values)`, remembered: the lookup (label checks, a lock) is paid once
        per label set instead of on every request."""
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def exposition(self) -> bytes:
        """The text exposition format: this registry's metrics, or in multiprocess mode the
        sums over every process that counted into the directory."""
        if self.multiprocess_dir is None:
            return bytes(generate_latest(self.registry))
        summed = CollectorRegistry()
        MultiProcessCollector(summed, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return bytes(generate_latest(summed))
