"""Reading the selected `DecisionMade` events in pages by ledger position (bounded memory),
through the ledger's scan API (`Ledger.scan`, `Ledger.count`): a replay covers the events up to
the position it started at, whatever is appended meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import pyarrow as pa

from ledger import EventRecord, Ledger
from router.services.decisions import DECISION_MADE
from router.services.replay._errors import ReplayError

__all__ = ["DecisionFilter", "Row", "count_decisions", "payload_fingerprint", "scan_batches"]

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
        the tenant and the policy, which are in the payload: the replay reads them there, and
        `matches` for a payload read one by one; a decision's stream is its tenant's sequence,
        or its policy's in ledgers of release 0.1.0)."""
        return {
            "types": (DECISION_MADE,),
            "event_ids": self.decision_ids or None,
            "recorded_since_us": None if self.since is None else _micros(self.since),
            "recorded_until_us": None if self.until is None else _micros(self.until),
        }

    def matches(self, record: EventRecord) -> bool:
        """Whether a decision that `query` selected has the tenant and policy asked for."""
        if self.tenant is None and self.fingerprint is None:
            return True
        payload = json.loads(record.payload)
        if self.tenant is not None and payload.get("tenant") != self.tenant:
            return False
        policy = payload.get("policy")
        return self.fingerprint is None or (
            isinstance(policy, dict) and policy.get("fingerprint") == self.fingerprint
        )


class Row(NamedTuple):
    """One selected decision as stored: position, event id, policy fingerprint, time, payload
    bytes, and the stream it was recorded in."""

    position: int
    event_id: bytes
    fingerprint: str
    recorded_at_us: int
    payload: bytes
    stream_id: str


_POLICY = b'"policy":{"digest":"'
_FINGERPRINT = b'","fingerprint":"'


def payload_fingerprint(payload: bytes) -> str:
    """The policy fingerprint of a `DecisionMade` payload, read from its canonical bytes without
    parsing them (a quote inside a JSON string is always escaped, so the member is found only
    where it is); parsed fully when the bytes do not have that layout, and `""` when the payload
    names no fingerprint (replay then reports the payload as unreadable)."""
    start = payload.find(_POLICY)
    if start >= 0:
        middle = start + len(_POLICY) + 64
        if payload.startswith(_FINGERPRINT, middle):
            begin = middle + len(_FINGERPRINT)
            end = payload.find(b'"', begin)
            text = payload[begin:end]
            if end > begin and b"\\" not in text:
                return text.decode("utf-8", "replace")
    try:
        found = json.loads(payload)["policy"]["fingerprint"]
    except (ValueError, KeyError, TypeError):
        return ""
    return found if isinstance(found, str) else ""


async def count_decisions(ledger: Ledger, flt: DecisionFilter, upto: int) -> int:
    """How many decisions the filter selects up to position `upto`, before the tenant and
    policy filters (which need the payloads): what progress counts."""
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


async def scan_batches(
    ledger: Ledger, flt: DecisionFilter, upto: int, page: int
) -> AsyncGenerator[pa.RecordBatch, None]:
    """Yield the decisions selected by `flt.query()` up to position `upto`, `page` at a time in
    position order, as stored, in columns (`Ledger.scan_batches`; the tenant and policy filters
    are the caller's: they read the payloads). Closing it stops the ledger's scan at once."""
    batches = ledger.scan_batches(stop=upto + 1, batch=page, **flt.query())
    async with contextlib.aclosing(batches):
        async for batch in batches:
            yield batch
