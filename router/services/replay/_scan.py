"""Reading the selected `DecisionMade` events in pages by ledger position (bounded memory).

The ledger's event table and the decision record's projection are read with lightweight table
references (names and the few columns replay needs), in one read transaction: a consistent
snapshot on both backends, whatever is appended meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, column, func, select, table

from ledger import Ledger
from router.services.decisions import DECISION_MADE, catch_up
from router.services.replay._errors import ReplayError

__all__ = ["DecisionFilter", "Row", "count_decisions", "scan_decisions"]

_events = table(
    "ledger_events",
    column("position"),
    column("event_id"),
    column("type"),
    column("stream_id"),
    column("recorded_at_us"),
    column("payload"),
)
_index = table("decision_index", column("position"), column("tenant"))

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

    def conditions(self) -> list[Any]:
        """SQL conditions on the event table (and the projection, for the tenant)."""
        where: list[Any] = [_events.c.type == DECISION_MADE]
        if self.since is not None:
            where.append(_events.c.recorded_at_us >= _micros(self.since))
        if self.until is not None:
            where.append(_events.c.recorded_at_us < _micros(self.until))
        if self.fingerprint is not None:
            where.append(_events.c.stream_id == self.fingerprint)
        if self.tenant is not None:
            where.append(_index.c.tenant == self.tenant)
        if self.decision_ids:
            where.append(_events.c.event_id.in_([d.bytes for d in self.decision_ids]))
        return where


class Row(NamedTuple):
    """One selected decision as stored: position, event id, stream, time, payload bytes."""

    position: int
    event_id: bytes
    stream_id: str
    recorded_at_us: int
    payload: bytes


def _source(flt: DecisionFilter) -> Any:
    if flt.tenant is None:
        return _events
    return _events.join(_index, _index.c.position == _events.c.position)


async def count_decisions(ledger: Ledger, flt: DecisionFilter, upto: int) -> int:
    """How many decisions the filter selects up to position `upto` (for progress)."""
    if flt.tenant is not None:
        await catch_up(ledger)
    query = (
        select(func.count())
        .select_from(_source(flt))
        .where(and_(*flt.conditions(), _events.c.position <= upto))
    )
    async with ledger.store.read() as conn:
        return int(await conn.scalar(query) or 0)


async def last_position(ledger: Ledger) -> int:
    """The last recorded position (-1 for an empty ledger): a replay covers up to it."""
    async with ledger.store.read() as conn:
        value = await conn.scalar(select(func.max(_events.c.position)))
    return -1 if value is None else int(value)


async def missing_ids(ledger: Ledger, ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """The ids among `ids` that are not `DecisionMade` events."""
    found: set[bytes] = set()
    async with ledger.store.read() as conn:
        for start in range(0, len(ids), 500):
            chunk = [d.bytes for d in ids[start : start + 500]]
            query = select(_events.c.event_id).where(
                and_(_events.c.event_id.in_(chunk), _events.c.type == DECISION_MADE)
            )
            found.update(bytes(r[0]) for r in (await conn.execute(query)).all())
    return [d for d in ids if d.bytes not in found]


async def scan_decisions(
    ledger: Ledger, flt: DecisionFilter, upto: int, page: int = 5000
) -> AsyncIterator[Sequence[Row]]:
    """Yield the selected decisions up to position `upto` in position order, `page` at a time."""
    if flt.tenant is not None:
        await catch_up(ledger)
    conditions = flt.conditions()
    source = _source(flt)

    def page_after(after: int) -> Any:
        return (
            select(
                _events.c.position,
                _events.c.event_id,
                _events.c.stream_id,
                _events.c.recorded_at_us,
                _events.c.payload,
            )
            .select_from(source)
            .where(and_(*conditions, _events.c.position > after, _events.c.position <= upto))
            .order_by(_events.c.position)
            .limit(page)
        )

    async with ledger.store.read() as conn:

        async def fetch(after: int) -> Sequence[Any]:
            return (await conn.execute(page_after(after))).all()

        # The next page is read while the caller works on this one (the database works in
        # its own thread or server): reading and evaluating overlap.
        pending = asyncio.ensure_future(fetch(-1))
        try:
            while True:
                rows = await pending
                if len(rows) == page:
                    pending = asyncio.ensure_future(fetch(rows[-1][0]))
                if rows:
                    # SQLite and asyncpg return bytes already: rows are used as they come.
                    yield rows
                if len(rows) < page:
                    return
        finally:
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pending
