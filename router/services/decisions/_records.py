"""The decision record's two types, `Decision` and `Attempt`, and what publishing returns."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal

from ledger import Envelope
from router.core import CatalogEntry, Trace
from router.services.decisions._errors import DecisionError

__all__ = ["Attempt", "AttemptStatus", "BodyState", "Decision", "PublishedCatalog"]

BodyState = Literal["stored", "erased", "not stored"]
AttemptStatus = Literal["ok", "error"]


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat().replace("+00:00", "Z")


def _non_negative(value: float | None) -> bool:
    return value is None or (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


@dataclass(frozen=True, slots=True)
class Attempt:
    """One upstream attempt of a decision, as an `AttemptFinished` event records it.

    Checked when built (`DecisionError` naming every problem): `number` is a positive integer,
    `status` is `ok` or `error`, `error_class` is set exactly when `status` is `error`, latency
    and cost are finite and non-negative, tokens are given both or neither. `recorded_at` is set
    once the ledger holds the attempt (`DecisionService.record_attempt` returns that copy)."""

    number: int
    entry: str
    status: AttemptStatus
    latency_ms: float
    error_class: str | None = None
    http_status: int | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    recorded_at: datetime | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        problems = []
        number = self.number
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            problems.append(f"attempt must be a positive integer, got {number!r}")
        if self.status not in ("ok", "error"):
            problems.append(f"status must be 'ok' or 'error', got {self.status!r}")
        if (self.status == "error") != (self.error_class is not None):
            problems.append("error_class is required for status 'error' and only then")
        if self.latency_ms is None or not _non_negative(self.latency_ms):
            problems.append(
                f"latency_ms must be a finite non-negative number, got {self.latency_ms}"
            )
        if (self.tokens_in is None) != (self.tokens_out is None):
            problems.append("give both tokens_in and tokens_out, or neither")
        if not _non_negative(self.cost_usd):
            problems.append(f"cost_usd must be a finite non-negative number, got {self.cost_usd}")
        if problems:
            raise DecisionError(f"attempt {number!r} (entry {self.entry!r}): {'; '.join(problems)}")

    def payload(self, decision_id: uuid.UUID, schema: str) -> dict[str, Any]:
        """The `AttemptFinished` payload of this attempt of decision `decision_id`."""
        return {
            "schema": schema,
            "decision_id": str(decision_id),
            "attempt": self.number,
            "entry": self.entry,
            "status": self.status,
            "error_class": self.error_class,
            "http_status": self.http_status,
            "latency_ms": self.latency_ms,
            "usage": None
            if self.tokens_in is None
            else {"in": self.tokens_in, "out": self.tokens_out},
            "cost_usd": self.cost_usd,
        }

    def recorded(self, at: datetime) -> Attempt:
        """This attempt as the ledger reads it back, recorded at `at`: canonical JSON writes an
        integral float as an integer (RFC 8785), which JSON reads as an int."""
        cost = self.cost_usd
        if isinstance(cost, float) and cost.is_integer() and abs(cost) < 1e21:
            cost = int(cost)
        # A copy through the slots, not `dataclasses.replace`, which would check every field a
        # second time (`__post_init__`) on every request, for values already checked.
        made = object.__new__(Attempt)
        for name in _COPIED:
            _set(made, name, getattr(self, name))
        _set(made, "cost_usd", cost)
        _set(made, "recorded_at", at)
        return made

    @classmethod
    def from_envelope(cls, envelope: Envelope) -> Attempt:
        """Read an `AttemptFinished` event."""
        return cls.from_payload(envelope.payload_json(), envelope.recorded_at)

    @classmethod
    def from_payload(cls, p: Mapping[str, Any], recorded_at: datetime | None) -> Attempt:
        """An `AttemptFinished` payload as read back from the ledger (JSON values)."""
        usage = p["usage"]
        return cls(
            number=p["attempt"],
            entry=p["entry"],
            status=p["status"],
            latency_ms=float(p["latency_ms"]),
            error_class=p["error_class"],
            http_status=p["http_status"],
            tokens_in=None if usage is None else usage["in"],
            tokens_out=None if usage is None else usage["out"],
            cost_usd=p["cost_usd"],
            recorded_at=recorded_at,
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-able (the `attempts` items of a decision's JSON)."""
        return {
            "attempt": self.number,
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


_set = object.__setattr__  # how a frozen dataclass sets its own fields
_COPIED = tuple(f.name for f in fields(Attempt) if f.name not in ("cost_usd", "recorded_at"))


@dataclass(frozen=True, slots=True)
class Decision:
    """A durably recorded decision: its trace and what the record adds (id, tenant, time…)."""

    decision_id: uuid.UUID
    tenant: str
    preview: bool
    trace: Trace
    request_digest: str | None
    body: BodyState
    position: int
    recorded_at: datetime
    attempts: tuple[Attempt, ...] = field(default=())
    idempotency_key: str | None = None
    """The SHA-256 hex of the request's Idempotency-Key, when it carried one."""

    @property
    def fingerprint(self) -> str:
        """The policy fingerprint."""
        return self.trace.policy.fingerprint

    @property
    def catalog_version(self) -> str:
        """The content address of the catalog version the decision saw."""
        return self.trace.catalog.version

    @property
    def selected(self) -> str | None:
        """The selected entry's id (None: no entry passed)."""
        index = self.trace.selected
        return None if index is None else self.trace.catalog.entries[index].id

    @property
    def plan(self) -> tuple[str, ...]:
        """The fallback plan's entry ids, in order."""
        return tuple(entry.id for entry in self.plan_entries)

    @property
    def plan_entries(self) -> tuple[CatalogEntry, ...]:
        """The fallback plan's catalog entries, the selected one first."""
        return tuple(self.trace.catalog.entries[i] for i in self.trace.plan)

    def to_json(self) -> dict[str, Any]:
        """The human trace (the shape of `unhardcoded rank --json`) plus `decision_id`, `tenant`,
        `recorded_at`, `preview`, `position`, `request_digest`, `features`, `request_body`
        (stored / erased / not stored) and `attempts`; `idempotency_key_sha256` only for a
        decision made under an Idempotency-Key."""
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
        if self.idempotency_key is not None:
            doc["idempotency_key_sha256"] = self.idempotency_key
        return doc


@dataclass(frozen=True, slots=True)
class PublishedCatalog:
    """The outcome of publishing: the version and whether this call recorded it (False: it was
    already published, publishing is a no-op)."""

    version: str
    name: str
    entries: int
    created: bool
