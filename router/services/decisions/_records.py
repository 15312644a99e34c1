"""What the decision record reads back: recorded decisions, their attempts, published catalogs."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ledger import Envelope
from router.core import Trace

__all__ = ["AttemptRecord", "AttemptStatus", "BodyState", "PublishedCatalog", "RecordedDecision"]

BodyState = Literal["stored", "erased", "not stored"]
AttemptStatus = Literal["ok", "error"]


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One upstream attempt of a decision (an `AttemptFinished` event)."""

    attempt: int
    entry: str
    status: AttemptStatus
    error_class: str | None
    http_status: int | None
    latency_ms: float
    tokens_in: int | None
    tokens_out: int | None
    cost_usd: float | None
    recorded_at: datetime

    @classmethod
    def from_envelope(cls, envelope: Envelope) -> AttemptRecord:
        """Read an `AttemptFinished` event."""
        return cls.from_payload(envelope.payload_json(), envelope.recorded_at)

    @classmethod
    def from_payload(cls, p: Mapping[str, Any], recorded_at: datetime) -> AttemptRecord:
        """An `AttemptFinished` payload as read back from the ledger (JSON values)."""
        usage = p["usage"]
        return cls(
            attempt=p["attempt"],
            entry=p["entry"],
            status=p["status"],
            error_class=p["error_class"],
            http_status=p["http_status"],
            latency_ms=float(p["latency_ms"]),
            tokens_in=None if usage is None else usage["in"],
            tokens_out=None if usage is None else usage["out"],
            cost_usd=p["cost_usd"],
            recorded_at=recorded_at,
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "attempt": self.attempt,
            "entry": self.entry,
            "status": self.status,
            "error_class": self.error_class,
            "http_status": self.http_status,
            "latency_ms": self.latency_ms,
            "usage": None
            if self.tokens_in is None
            else {"in": self.tokens_in, "out": self.tokens_out},
            "cost_usd": self.cost_usd,
            "recorded_at": _iso(self.recorded_at),
        }


@dataclass(frozen=True, slots=True)
class RecordedDecision:
    """A durably recorded decision: its trace and what the record adds (id, tenant, time…)."""

    decision_id: uuid.UUID
    tenant: str
    preview: bool
    trace: Trace
    request_digest: str | None
    body: BodyState
    position: int
    recorded_at: datetime
    attempts: tuple[AttemptRecord, ...] = field(default=())

    @property
    def selected(self) -> str | None:
        """The selected entry's id (None: no entry passed)."""
        index = self.trace.selected
        return None if index is None else self.trace.catalog.entries[index].id

    @property
    def plan(self) -> tuple[str, ...]:
        """The fallback plan's entry ids, in order."""
        return tuple(self.trace.catalog.entries[i].id for i in self.trace.plan)

    def to_json(self) -> dict[str, Any]:
        """The human trace (the shape of `unhardcoded rank --json`) plus `decision_id`, `tenant`,
        `recorded_at`, `preview`, `position`, `request_digest`, `features`, `request_body`
        (stored / erased / not stored) and `attempts`."""
        doc = self.trace.to_json()
        features = self.trace.features
        doc.update(
            {
                "decision_id": str(self.decision_id),
                "tenant": self.tenant,
                "recorded_at": _iso(self.recorded_at),
                "preview": self.preview,
                "position": self.position,
                "request_digest": self.request_digest,
                "features": None if features is None else features.to_json(),
                "request_body": self.body,
                "attempts": [a.to_json() for a in self.attempts],
            }
        )
        return doc


@dataclass(frozen=True, slots=True)
class PublishedCatalog:
    """The outcome of publishing: the version and whether this call recorded it (False: it was
    already published, publishing is a no-op)."""

    version: str
    name: str
    entries: int
    created: bool
