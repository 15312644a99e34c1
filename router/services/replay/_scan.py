"""Reading the selected `DecisionMade` events in pages by ledger position (bounded memory),
through the ledger's scan API (`Ledger.scan`, `Ledger.count`): a replay covers the events up to
the position it started at, whatever is appended meanwhile.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from ledger import EventRecord, Ledger
from router.services.decisions import DECISION_MADE
from router.services.replay._errors import ReplayError

__all__ = ["DecisionFilter", "Row", "count_decisions", "scan_records"]

MAX_IDS = 100_000
"""Most decision ids one replay takes."""


def _micros(at: datetime) -> int:
    if at.tzinfo is None:
        raise ReplayError(f"time {at.isoformat()} has no time zone (give e.g. Z or +00:00)")
    return int(at.timestamp() * 1_000_000)


@dataclass(frozen=True, slots=True)
class DecisionFilter:
    """Which decisions a replay covers: `since` ≤ recorded_at < `until`, tenant, policy
    fingerprint, explicit decision ids (all optional; combined with AND)."""

    since: datetime | None = None
    until: datetime | None = None
    tenant: str | None = None
    fingerprint: str | None = None
    decision_ids: tuple[uuid.UUID, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None:
            if _micros(self.since) >= _micros(self.until):
                raise ReplayError(
                    f"--since {self.since.isoformat()} is not before --until "
                    f"{self.until.isoformat()}"
                )
        elif self.since is not None:
            _micros(self.since)
        elif self.until is not None:
            _micros(self.until)
        if len(self.decision_ids) > MAX_IDS:
            raise ReplayError(f"at most {MAX_IDS} decision ids, got {len(self.decision_ids)}")

    def to_json(self) -> dict[str, Any]:
        """JSON-able (what the `ReplayRun` event records)."""
        return {
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "tenant": self.tenant,
            "fingerprint": self.fingerprint,
            "decision_ids": [str(d) for d in self.decision_ids],
        }

    def query(self) -> dict[str, Any]:
        """The filters of `Ledger.select`/`scan`/`count` that select these decisions (all but
        the tenant, which is in the payload: the replay reads it there)."""
        return {
            "types": (DECISION_MADE,),
            "stream_id": self.fingerprint,
            "event_ids": self.decision_ids or None,
            "recorded_since_us": None if self.since is None else _micros(self.since),
            "recorded_until_us": None if self.until is None else _micros(self.until),
        }


class Row(NamedTuple):
    """One selected decision as stored: position, event id, stream, time, payload bytes."""

    position: int
    event_id: bytes
    stream_id: str
    recorded_at_us: int
    payload: bytes


async def count_decisions(ledger: Ledger, flt: DecisionFilter, upto: int) -> int:
    """How many decisions the filter selects up to position `upto`, before the tenant filter
    (which needs the payloads): what progress counts."""
    return await ledger.count(stop=upto + 1, **flt.query())


async def last_position(ledger: Ledger) -> int:
    """The last recorded position (-1 for an empty ledger): a replay covers up to it."""
    return await ledger.last_position()


async def missing_ids(ledger: Ledger, ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """The ids among `ids` that are not `DecisionMade` events."""
    found: set[bytes] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = await ledger.select(0, len(chunk), types=(DECISION_MADE,), event_ids=chunk)
        found.update(bytes(r.event_id) for r in rows)
    return [d for d in ids if d.bytes not in found]


async def scan_records(
    ledger: Ledger, flt: DecisionFilter, upto: int, page: int
) -> AsyncIterator[Sequence[EventRecord]]:
    """Yield the decisions selected by `flt.query()` up to position `upto`, `page` at a time in
    position order, as stored (the tenant filter is the caller's: it reads the payloads)."""
    async for records in ledger.scan(stop=upto + 1, batch=page, **flt.query()):
        yield records
